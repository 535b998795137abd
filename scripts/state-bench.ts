/**
 * Figures of the key-value state and its snapshots (not wired into `npm run bench`), each printed
 * beside issue 8's target where it has one, and beside a baseline measured in the same run (this
 * machine is shared and noisy: the ratio to the baseline varies less than the figure):
 * - apply: 1M PUTs over 100k keys, and 1M PUTs of distinct keys; baseline: `Map#set` of the same
 *   keys and values converted to byte strings, nothing else;
 * - for 1M keys of 100-byte values written in an order unrelated to key order: memory per key,
 *   view cost, snapshot encode (CPU only) and write (plain and gzip; target 200 MB/s of state;
 *   baseline: `node:fs` writing and fdatasyncing as many bytes in the same chunks), the write again
 *   with appends going on (64 records a turn of the event loop; beside it, the same appends with
 *   no write), load (baseline: `Map#set` of the same entries sliced from the file's bytes),
 *   rebuild = load + a tail of 1M records over 100k keys (target 1M records/s), a write of the
 *   rebuilt state (laid out in key order by the load), incremental write;
 * - the alternative considered for the consistent view: a Map, sorted at snapshot time.
 *
 * Usage: `npm run build && node --expose-gc --max-old-space-size=8000 dist/scripts/state-bench.js [--keys N]`
 * (`--expose-gc`: memory figures, and a collection before each timed phase so that one phase's
 * garbage is not collected in the next).
 * Writes its snapshots under a temp directory on the default temp file system, then removes it.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { WalRecord } from '../src/codec/record.js';
import { SNAPSHOT_ENTRY_HEADER_BYTES, SNAPSHOT_HEADER_BYTES, SNAPSHOT_TRAILER_BYTES } from '../src/codec/snapshot-file.js';
import { KeyState } from '../src/state/key-state.js';
import { loadSnapshot } from '../src/state/snapshot-reader.js';
import { DEFAULT_SNAPSHOT_CHUNK_BYTES, writeSnapshot, type WrittenSnapshot } from '../src/state/snapshot-writer.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import type { Storage, StorageFile } from '../src/storage/storage.js';

const argKeys = process.argv.indexOf('--keys');
const KEYS = argKeys > 0 ? Number(process.argv[argKeys + 1]) : 1_000_000;
const VALUE_BYTES = 100;
const NO_HEADERS = Object.freeze({});
/** Issue 8's targets. */
const TARGET_WRITE_MB_S = 200;
const TARGET_REBUILD_M_S = 1;

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

function timed(run: () => void): number {
  gc();
  const start = process.hrtime.bigint();
  run();
  return seconds(start);
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
const millions = (count: number, s: number): string => (count / s / 1e6).toFixed(2);
const ratio = (figure: number, baseline: number): string => `${(figure / baseline).toFixed(2)}x`;

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

/**
 * The `i`-th of a stream of PUTs over `keySpace` keys from `firstOffset`, made when asked (as a
 * server's appends arrive), so that no million record objects sit in the heap while figures are
 * taken: each garbage collection would trace them.
 */
function streamRecord(i: number, keySpace: number, firstOffset: number): WalRecord {
  const key = Buffer.from(`key:${((i * 2_654_435_761) % keySpace).toString(36).padStart(8, '0')}`, 'latin1');
  return { offset: firstOffset + i, timestamp: 1_700_000_000_000 + i, type: 'put', key, value: Buffer.alloc(VALUE_BYTES, i & 0xff), headers: NO_HEADERS };
}

/** `count` PUTs of distinct keys, in an order unrelated to key order (a multiplicative permutation). */
function distinctKeys(count: number, firstOffset: number): WalRecord[] {
  return makeRecords(count, count, firstOffset).map((record, i) => ({
    ...record,
    key: Buffer.from(`key:${((i * 2_654_435_761) % count).toString(36).padStart(8, '0')}`, 'latin1'),
  }));
}

/** The baseline of apply: what a `Map` of byte strings costs for the same records, and nothing else. */
function mapBaseline(records: readonly WalRecord[]): number {
  return timed(() => {
    const map = new Map<string, string>();
    for (const r of records) map.set(r.key!.toString('latin1'), r.value.toString('latin1'));
  });
}

/** Applies `records` to `state`; returns the seconds taken. */
function applyAll(state: KeyState, records: readonly WalRecord[]): number {
  return timed(() => {
    for (const record of records) state.apply(record);
  });
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

/** The baseline of a write: `node:fs` writing `bytes` bytes in snapshot-sized chunks, then fdatasync. */
function fsWriteBaseline(dir: string, bytes: number): number {
  const path = join(dir, 'baseline.bin');
  const chunk = Buffer.alloc(DEFAULT_SNAPSHOT_CHUNK_BYTES, 0x5a);
  const s = timed(() => {
    const fd = openSync(path, 'w');
    for (let written = 0; written < bytes; written += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
    fdatasyncSync(fd);
    closeSync(fd);
  });
  unlinkSync(path);
  return s;
}

/** The baseline of a load: `Map#set` of each entry's key and value, sliced from the file's bytes (no checks, no hash). */
function mapLoadBaseline(path: string): number {
  const file = readFileSync(path);
  return timed(() => {
    const map = new Map<string, string>();
    const end = file.length - SNAPSHOT_TRAILER_BYTES;
    for (let p = SNAPSHOT_HEADER_BYTES; p < end; ) {
      const keyBytes = file.readUInt32LE(p + 1);
      const valueBytes = file.readUInt32LE(p + 5);
      const key = p + SNAPSHOT_ENTRY_HEADER_BYTES;
      map.set(file.toString('latin1', key, key + keyBytes), file.toString('latin1', key + keyBytes, key + keyBytes + valueBytes));
      p = key + keyBytes + valueBytes;
    }
  });
}

interface TimedWrite {
  readonly snapshot: WrittenSnapshot;
  readonly s: number;
  readonly maxStallMs: number;
  /** Records applied by the append loop during the write. */
  readonly appended: number;
  /** Most pre-images the state held for the view during the write. */
  readonly maxViewBytes: number;
}

/** Most appends applied during one timed write. */
const MAX_APPENDS = 1_000_000;
/** Records applied per turn of the event loop by the append loop. */
const APPENDS_PER_TURN = 64;

/** Appends per second of the append loop with no snapshot being written, over `ms` milliseconds. */
function appendsAlone(state: KeyState, ms: number): number {
  const firstOffset = state.nextOffset;
  const end = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  let appended = 0;
  // Synchronous turns of the same size: what the loop does between the write's turns.
  while (process.hrtime.bigint() < end) for (let i = 0; i < APPENDS_PER_TURN; i++) state.apply(streamRecord(appended++, state.size, firstOffset));
  return appended / (ms / 1000);
}

/**
 * Writes a full snapshot of `state` while, when `isAppending`, a loop applies PUTs to its keys one
 * turn of the event loop after another (as a server appending for clients would,
 * {@link APPENDS_PER_TURN} records a turn) until the write ends.
 */
async function timedWrite(storage: Storage, dir: string, state: KeyState, compress: boolean, isAppending = false): Promise<TimedWrite> {
  gc();
  const view = state.captureView();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let appended = 0;
  let maxViewBytes = 0;
  let isWriting = true;
  const firstOffset = state.nextOffset;
  const appendTurn = (): void => {
    if (!isWriting) return;
    for (let i = 0; i < APPENDS_PER_TURN && appended < MAX_APPENDS; i++) state.apply(streamRecord(appended++, state.size, firstOffset));
    maxViewBytes = Math.max(maxViewBytes, state.viewMemoryBytes);
    if (appended < MAX_APPENDS) setImmediate(appendTurn);
  };
  if (isAppending) setImmediate(appendTurn);
  delay.enable();
  const start = process.hrtime.bigint();
  const snapshot = await writeSnapshot(storage, dir, view, { type: 'full' }, { compress });
  const s = seconds(start);
  isWriting = false;
  delay.disable();
  return { snapshot, s, maxStallMs: delay.max / 1e6, appended, maxViewBytes };
}

/** The alternative for a consistent ordered view: a Map (O(1) updates), copied and sorted when a snapshot needs one. */
function alternativeMap(records: readonly WalRecord[]): void {
  const map = new Map<string, { value: string; offset: number; timestamp: number }>();
  for (const r of records) map.set(r.key!.toString('latin1'), { value: r.value.toString('latin1'), offset: r.offset, timestamp: r.timestamp });
  const start = process.hrtime.bigint();
  const keys = [...map.keys()].sort();
  console.log(`alternative Map: consistent ordered view (copy + sort ${keys.length} keys, blocking) ${(seconds(start) * 1000).toFixed(0)} ms`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wald-state-bench-'));
  const storage = new NodeStorage();
  try {
    {
      const records = makeRecords(1_000_000, 100_000, 0);
      const baseS = mapBaseline(records);
      const state = new KeyState();
      const s = applyAll(state, records);
      console.log(`apply: 1000000 PUTs over 100k keys: ${millions(1e6, s)} M records/s; baseline Map#set ${millions(1e6, baseS)} M/s; ratio ${ratio(baseS, s)}`);
    }
    let records: WalRecord[] | undefined = distinctKeys(KEYS, 0);
    const baseS = mapBaseline(records);
    const heapBefore = heapBytes();
    const state = new KeyState({ maxStateBytes: 2 ** 40 });
    const applyS = applyAll(state, records);
    const heapPerKey = (heapBytes() - heapBefore) / KEYS;
    const dataBytes = records.reduce((sum, r) => sum + (r.key?.length ?? 0) + r.value.length, 0);
    alternativeMap(records);
    records = undefined;
    console.log(`apply: ${KEYS} PUTs of distinct keys: ${millions(KEYS, applyS)} M records/s; baseline Map#set ${millions(KEYS, baseS)} M/s; ratio ${ratio(baseS, applyS)}`);
    console.log(
      `memory: heap + array buffers grew ${heapPerKey.toFixed(0)} B per key for ${(dataBytes / KEYS).toFixed(0)} B of key + value (pages ${(state.pageMemoryBytes / KEYS).toFixed(0)} B per key); estimate ${(state.memoryBytes / KEYS).toFixed(0)} B per key`,
    );
    let start = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) state.captureView().release();
    console.log(`view: captureView() + release() ${((seconds(start) / 1000) * 1e6).toFixed(1)} us`);
    let loadBaseS = 0;
    for (const compress of [false, true]) {
      const kind = compress ? 'gzip level 1' : 'plain';
      const encoded = await timedWrite(discardingStorage(), dir, state, compress);
      console.log(`snapshot encode (${kind}, written nowhere): ${mb(dataBytes / encoded.s)} MB/s of state`);
      const { snapshot, s, maxStallMs } = await timedWrite(storage, dir, state, compress);
      const fsS = fsWriteBaseline(dir, snapshot.sizeBytes);
      console.log(
        `snapshot write (${kind}): ${KEYS} keys, ${mb(dataBytes)} MB of keys + values, file ${mb(snapshot.sizeBytes)} MB in ${s.toFixed(2)} s = ${mb(dataBytes / s)} MB/s of state (target ${TARGET_WRITE_MB_S}; ${mb(snapshot.sizeBytes / s)} MB/s of file), longest event-loop stall ${maxStallMs.toFixed(1)} ms; baseline node:fs write + fdatasync of the file's bytes ${mb(snapshot.sizeBytes / fsS)} MB/s; ratio ${ratio(fsS, s)}`,
      );
      const aloneK = appendsAlone(state, 1000) / 1e3;
      const during = await timedWrite(storage, dir, state, compress, true);
      console.log(
        `  with appends going on: write ${mb(dataBytes / during.s)} MB/s of state; ${during.appended} appends applied = ${(during.appended / during.s / 1e3).toFixed(0)}k/s (alone, the same loop: ${aloneK.toFixed(0)}k/s), longest event-loop stall ${during.maxStallMs.toFixed(1)} ms, pre-images held at most ${mb(during.maxViewBytes)} MB; open views after the write: ${state.openViewCount}`,
      );
      // The baseline reads the plain file's entries (the first round's): a Map costs the same whatever the file.
      if (!compress) loadBaseS = mapLoadBaseline(snapshot.path);
      gc();
      start = process.hrtime.bigint();
      const loaded = await loadSnapshot(storage, snapshot.path, { maxStateBytes: 2 ** 40 });
      const loadS = seconds(start);
      if (!loaded.ok) throw new Error(`${loaded.file}: ${loaded.reason}`);
      if (loaded.state.size !== KEYS) throw new Error(`loaded ${loaded.state.size} keys, wrote ${KEYS}`);
      const tail = makeRecords(1_000_000, 100_000, loaded.state.nextOffset);
      const tailS = applyAll(loaded.state, tail);
      const rebuilt = KEYS + tail.length;
      console.log(
        `snapshot load (${compress ? 'gzip' : 'plain'}, verify + rebuild): ${millions(KEYS, loadS)} M entries/s; baseline Map#set from the plain file's bytes ${millions(KEYS, loadBaseS)} M/s; ratio ${ratio(loadBaseS, loadS)}`,
      );
      console.log(
        `rebuild (${compress ? 'gzip' : 'plain'}): load ${KEYS} + tail of 1M records over 100k keys (${millions(tail.length, tailS)} M/s) = ${millions(rebuilt, loadS + tailS)} M records/s (target ${TARGET_REBUILD_M_S})`,
      );
      if (!compress) {
        // A server's state after open: loaded in key order, then updated by the log's tail.
        const again = await timedWrite(storage, dir, loaded.state, false);
        console.log(`snapshot write of the rebuilt state (plain): ${mb(dataBytes / again.s)} MB/s of state (target ${TARGET_WRITE_MB_S}); ratio to the node:fs baseline ${ratio(fsS, again.s)}`);
        state.forgetChangesBefore(snapshot.walOffset);
        for (const record of makeRecords(10_000, KEYS, state.nextOffset)) state.apply(record);
        gc();
        start = process.hrtime.bigint();
        await writeSnapshot(discardingStorage(), dir, state.captureView(), { type: 'incremental', base: snapshot });
        const encodeS = seconds(start);
        start = process.hrtime.bigint();
        const incremental = await writeSnapshot(storage, dir, state.captureView(), { type: 'incremental', base: snapshot });
        console.log(`incremental write: ${incremental.entryCount} changed keys of ${state.size}: written nowhere ${encodeS.toFixed(2)} s, to disk ${seconds(start).toFixed(2)} s`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
