/**
 * Data directories for the tests of the offline tools (`wald verify`, `dump`, `repair`): a real
 * log of several small segments written through `Wal`, snapshot files beside it, and ways to damage
 * them on disk.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, type AppendRecord, type WalOptions } from '../../src/index.js';
import { KeyState } from '../../src/state/key-state.js';
import { writeSnapshot } from '../../src/state/snapshot-writer.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { FakeClock } from './fake-clock.js';
import { segmentFrames, type FrameExtent } from './segment-frames.js';

/** Segment size of the test logs: a few dozen frames each. */
export const TEST_SEGMENT_BYTES = 4096;

/** `00000000000000000042.seg` */
export function segmentName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.seg`;
}

/** `00000000000000000042.idx` */
export function indexName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.idx`;
}

/** Batch `b` of a test log: a keyed text record and an unkeyed binary one with a header. */
export function testBatch(b: number): AppendRecord[] {
  return [
    { key: Buffer.from(`key-${b}`), value: Buffer.from(`batch ${b} record 0 `.padEnd(30 + (b % 5), '.')) },
    { value: Buffer.from([0xff, 0xfe, b & 0xff, 0x00]), headers: { n: Buffer.from(String(b)) } },
  ];
}

/** A test log as written. */
export interface TestLog {
  readonly dir: string;
  /** Every record appended, in offset order from 0. */
  readonly records: AppendRecord[];
  /** The segments' base offsets, oldest first. */
  readonly bases: number[];
  /** The frames of the segment with this base offset, read from its bytes. */
  framesOf(baseOffset: number): FrameExtent[];
}

/** Options the test logs are written and reopened with. */
export function testLogOptions(dir: string): WalOptions {
  return { dir, syncPolicy: 'always', segmentSizeBytes: TEST_SEGMENT_BYTES, preallocate: false, clock: new FakeClock().now };
}

/**
 * Writes `batches` batches of {@link testBatch} into a new log in `dir` (every fifth with a
 * producer stamp) and closes it cleanly, unless `isLeftOpen`: then the log is returned open too.
 */
export async function writeTestLog(dir: string, batches: number, isLeftOpen = false): Promise<TestLog & { wal?: Wal }> {
  const { wal } = await Wal.open(testLogOptions(dir));
  const records: AppendRecord[] = [];
  for (let b = 0; b < batches; b++) {
    await wal.append(testBatch(b), b % 5 === 0 ? { producerId: 'producer-1', sequence: b } : {});
    records.push(...testBatch(b));
  }
  if (!isLeftOpen) await wal.close();
  const bases = readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort()
    .map((name) => Number(name.slice(0, 20)));
  return {
    dir,
    records,
    bases,
    framesOf: (base) => segmentFrames(readFileSync(join(dir, segmentName(base)))),
    ...(isLeftOpen ? { wal } : {}),
  };
}

/**
 * Writes a full snapshot into `snapshotDir` of a state holding one PUT per offset below
 * `walOffset` (keys `k<offset % 7>`); resolves with its path.
 */
export async function writeTestSnapshot(snapshotDir: string, walOffset: number, type: 'full' | 'point' = 'full'): Promise<string> {
  const state = new KeyState();
  for (let offset = 0; offset < walOffset; offset++) {
    state.apply({ offset, timestamp: 1_700_000_000_000 + offset, type: 'put', key: Buffer.from(`k${offset % 7}`), value: Buffer.from(`v${offset}`) });
  }
  const written = await writeSnapshot(new NodeStorage(), snapshotDir, state.captureView(), type === 'full' ? { type } : { type, key: Buffer.from('k0') });
  return written.path;
}

/** XORs the byte at `position` of a file with 0xff (twice restores it). */
export function flipByte(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, position);
    one[0]! ^= 0xff;
    writeSync(fd, one, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}
