/**
 * Logs for the key compaction tests of the engine: a MemDisk log of several 4 KiB segments whose
 * records name their offsets, and the readers of it the tests share.
 */
import type { WalRecord } from '../../src/engine/types.js';
import { Wal } from '../../src/engine/wal.js';
import type { WalOptions } from '../../src/engine/wal-options.js';
import type { Storage } from '../../src/storage/storage.js';
import type { FakeClock } from './fake-clock.js';
import type { MemDisk } from './mem-disk.js';

/** The data directory of the logs. */
export const DIR = '/data';

/** The log's options: small segments and index intervals, no preallocation, the test's clock. */
export function options(storage: Storage, clock: FakeClock, extra: Partial<WalOptions> = {}): WalOptions {
  return { dir: DIR, storage, segmentSizeBytes: 4096, indexIntervalBytes: 256, preallocate: false, clock: clock.now, onWarning: () => {}, ...extra };
}

/** The value of the record at `offset`: recognisable when read back. */
export const valueOf = (offset: number): Buffer => Buffer.from(`record ${offset} `.padEnd(60, '.'));

/** A log of `batches` batches of 1-5 records (timestamps 1 ms apart per batch), several segments. */
export async function filledLog(disk: MemDisk, clock: FakeClock, batches = 60, extra: Partial<WalOptions> = {}): Promise<Wal> {
  const { wal } = await Wal.open(options(disk.mount(), clock, extra));
  let offset = 0;
  for (let b = 0; b < batches; b++) {
    clock.advance(1);
    const count = 1 + (b % 5);
    const records = Array.from({ length: count }, (_, r) => ({ key: Buffer.from(`k${(offset + r) % 7}`), value: valueOf(offset + r) }));
    const producer = b % 4 === 0 ? { producerId: 'p', sequence: b } : {};
    await wal.append(records, producer);
    offset += count;
  }
  return wal;
}

/** Every record from `from` (default: the first retained offset). */
export async function readAll(wal: Wal, from = wal.firstOffset): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(from)) out.push(record);
  return out;
}

/** The active segment's base offset: the first offset no rewrite may touch. */
export function activeBase(wal: Wal): number {
  return (wal as unknown as { segments: { active: { baseOffset: number } } }).segments.active.baseOffset;
}

