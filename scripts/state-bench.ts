/**
 * Figures of the key-value state and its snapshots (not wired into `npm run bench`):
 * - apply rate of 1M PUTs over 100k keys;
 * - for 1M keys of 100-byte values: heap per key, view (clone) cost, snapshot write rate (plain and
 *   gzip), the longest event-loop stall during the write, load rate, incremental write;
 * - the alternative considered for the consistent view: a Map, sorted at snapshot time.
 *
 * Usage: `npm run build && node --expose-gc --max-old-space-size=8000 dist/scripts/state-bench.js [--keys N]`
 * (`--expose-gc`: heap figures, and a collection before each timed phase so that one phase's
 * garbage is not collected in the next).
 * Writes its snapshots under a temp directory on the default temp file system, then removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { WalRecord } from '../src/codec/record.js';
import { KeyState } from '../src/state/key-state.js';
import { loadSnapshot } from '../src/state/snapshot-reader.js';
import { writeSnapshot, type WrittenSnapshot } from '../src/state/snapshot-writer.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import type { Storage, StorageFile } from '../src/storage/storage.js';

const argKeys = process.argv.indexOf('--keys');
const KEYS = argKeys > 0 ? Number(process.argv[argKeys + 1]) : 1_000_000;
const VALUE_BYTES = 100;
const NO_HEADERS = Object.freeze({});

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function heapBytes(): number {
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Records as the log hands them out: keys and values are views into one large read buffer. */
function makeRecords(count: number, keySpace: number, firstOffset: number): WalRecord[] {
  const records: WalRecord[] = [];
  const buffer = Buffer.alloc(Math.min(count, 100_000) * (16 + VALUE_BYTES));
  for (let i = 0; i < count; i++) {
    const slot = (i % 100_000) * (16 + VALUE_BYTES);
    const keyBytes = buffer.write(`key:${((i * 2_654_435_761) % keySpace).toString(36).padStart(8, '0')}`, slot, 'latin1');
    buffer.fill(i & 0xff, slot + 16, slot + 16 + VALUE_BYTES);
    records.push({
      offset: firstOffset + i,
      timestamp: 1_700_000_000_000 + i,
      type: 'put',
      key: buffer.subarray(slot, slot + keyBytes),
      value: buffer.subarray(slot + 16, slot + 16 + VALUE_BYTES),
      headers: NO_HEADERS,
    });
  }
  return records;
}

/** `count` PUTs of distinct keys, in an order unrelated to key order (a multiplicative permutation). */
function distinctKeys(count: number, firstOffset: number): WalRecord[] {
  return makeRecords(count, count, firstOffset).map((record, i) => ({
    ...record,
    key: Buffer.from(`key:${((i * 2_654_435_761) % count).toString(36).padStart(8, '0')}`, 'latin1'),
  }));
}

/** A storage that discards what is written: separates the writer's CPU cost from the disk's. */
function discardingStorage(): Storage {
  const file: StorageFile = {
    path: '/dev/null',
    writev: (buffers) => buffers.reduce((sum, b) => sum + b.length, 0),
    readSync: () => 0,
    read: () => Promise.resolve(0),
    fillZeros: () => Promise.resolve(),
    datasync: () => {},
    datasyncAsync: () => Promise.resolve(),
    sync: () => {},
    truncate: () => {},
    size: () => 0,
    close: () => {},
  };
  return {
    open: () => file,
    list: () => [],
    exists: () => true,
    size: () => 0,
    mkdirp: () => {},
    rename: () => {},
    unlink: () => {},
    syncDir: () => {},
    readFile: () => Buffer.alloc(0),
    lock: () => ({ release: () => {} }),
  };
}

async function timedWrite(storage: Storage, dir: string, state: KeyState, compress: boolean): Promise<{ snapshot: WrittenSnapshot; s: number; maxStallMs: number }> {
  const view = state.captureView();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const start = process.hrtime.bigint();
  const snapshot = await writeSnapshot(storage, dir, view, { type: 'full' }, { compress });
  const s = seconds(start);
  delay.disable();
  return { snapshot, s, maxStallMs: delay.max / 1e6 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wald-state-bench-'));
  const storage = new NodeStorage();
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
  try {
    {
      const records = makeRecords(1_000_000, 100_000, 0);
      const state = new KeyState();
      const start = process.hrtime.bigint();
      for (const record of records) state.apply(record);
      const s = seconds(start);
      console.log(`apply: 1000000 PUTs over 100k keys (${state.size} distinct): ${s.toFixed(2)} s = ${(1e6 / s / 1e6).toFixed(2)} M records/s`);
    }
    const records = distinctKeys(KEYS, 0);
    const heapBefore = heapBytes();
    const state = new KeyState({ maxStateBytes: 2 ** 40 });
    let start = process.hrtime.bigint();
    for (const record of records) state.apply(record);
    const applyS = seconds(start);
    const heapPerKey = (heapBytes() - heapBefore) / KEYS;
    const dataBytes = records.reduce((sum, r) => sum + (r.key?.length ?? 0) + r.value.length, 0);
    console.log(`apply: ${KEYS} PUTs of distinct keys: ${applyS.toFixed(2)} s = ${(KEYS / applyS / 1e6).toFixed(2)} M records/s`);
    console.log(`memory: heap growth ${heapPerKey.toFixed(0)} B per key for ${(dataBytes / KEYS).toFixed(0)} B of key + value; estimate ${(state.memoryBytes / KEYS).toFixed(0)} B per key`);
    start = process.hrtime.bigint();
    const views = [];
    for (let i = 0; i < 1000; i++) views.push(state.captureView());
    console.log(`view: captureView() ${((seconds(start) / 1000) * 1e6).toFixed(1)} us`);
    views.length = 0;
    for (const compress of [false, true]) {
      gc();
      const encoded = await timedWrite(discardingStorage(), dir, state, compress);
      console.log(`snapshot encode (${compress ? 'gzip level 1' : 'plain'}, written nowhere): ${mb(dataBytes / encoded.s)} MB/s of state`);
      gc();
      const { snapshot, s, maxStallMs } = await timedWrite(storage, dir, state, compress);
      console.log(
        `snapshot write (${compress ? 'gzip level 1' : 'plain'}): ${KEYS} keys, ${mb(dataBytes)} MB of keys + values, file ${mb(snapshot.sizeBytes)} MB in ${s.toFixed(2)} s = ${mb(dataBytes / s)} MB/s of state (${mb(snapshot.sizeBytes / s)} MB/s of file), longest event-loop stall ${maxStallMs.toFixed(1)} ms`,
      );
      gc();
      start = process.hrtime.bigint();
      const loaded = await loadSnapshot(storage, snapshot.path, { maxStateBytes: 2 ** 40 });
      const loadS = seconds(start);
      if (!loaded.ok) throw new Error(`${loaded.file}: ${loaded.reason}`);
      console.log(`snapshot load (${compress ? 'gzip' : 'plain'}): ${loaded.state.size} entries in ${loadS.toFixed(2)} s = ${(loaded.state.size / loadS / 1e6).toFixed(2)} M entries/s`);
      if (!compress) {
        state.forgetChangesBefore(snapshot.walOffset);
        for (const record of makeRecords(10_000, KEYS, state.nextOffset)) state.apply(record);
        gc();
        start = process.hrtime.bigint();
        await writeSnapshot(discardingStorage(), dir, state.captureView(), { type: 'incremental', base: snapshot });
        const encodeS = seconds(start);
        start = process.hrtime.bigint();
        const incremental = await writeSnapshot(storage, dir, state.captureView(), { type: 'incremental', base: snapshot });
        console.log(`incremental write: ${incremental.entryCount} changed keys of ${state.size}: written nowhere (run first) ${encodeS.toFixed(2)} s, to disk ${seconds(start).toFixed(2)} s`);
      }
    }
    {
      // The alternative: a Map (O(1) updates), copied and sorted when a snapshot needs a consistent, ordered view.
      const map = new Map<string, { value: string; offset: number; timestamp: number }>();
      start = process.hrtime.bigint();
      for (const r of records) map.set(r.key!.toString('latin1'), { value: r.value.toString('latin1'), offset: r.offset, timestamp: r.timestamp });
      const mapApplyS = seconds(start);
      start = process.hrtime.bigint();
      const keys = [...map.keys()].sort();
      const sortS = seconds(start);
      console.log(`alternative Map: apply ${KEYS} ${(KEYS / mapApplyS / 1e6).toFixed(2)} M records/s; consistent ordered view (copy + sort ${keys.length} keys, blocking) ${(sortS * 1000).toFixed(0)} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
