import { createHash, randomInt, type Hash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import {
  encodeEndedTxnValue,
  encodeSnapshotEntryHeader,
  encodeSnapshotHeader,
  encodeSnapshotTrailer,
  SNAPSHOT_ENTRY_HEADER_BYTES,
  SNAPSHOT_TEMP_SUFFIX,
  type SnapshotHeader,
} from '../codec/snapshot-file.js';
import { formatSnapshotId, parseSnapshotId, snapshotFileName } from '../codec/snapshot-id.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import { WalError } from '../errors.js';
import { StorageError, type Storage, type StorageFile } from '../storage/storage.js';
import { copyBytes } from './byte-range.js';
import { DELETED } from './entry-store.js';
import { snapshotInfoOf, type SnapshotInfo } from './snapshot-info.js';
import { EntryCursor, type CursorFilter } from './entry-cursor.js';
import type { KeyEntry, StateView } from './state-view.js';
import type { TxnCapture } from './txn-table.js';

/**
 * Default of {@link SnapshotWriteOptions.chunkBytes}: 256 KiB. Measured on 1M keys: the same write
 * rate as 1 MiB chunks, half the longest event-loop turn (docs/state.md).
 */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Keys scanned between two yields to the event loop when no chunk was filled meanwhile (an incremental skips the unchanged ones). */
const SCANNED_KEYS_PER_TURN = 16_384;
/** Keys read from a view at a time (state-view.ts `read`). */
const BATCH_KEYS = 1024;

/** Which snapshot to write of a view. */
export type SnapshotRequest =
  | { readonly type: 'full' }
  /** The changes since `base` (a full or incremental snapshot of the same state, at or below the view). */
  | { readonly type: 'incremental'; readonly base: SnapshotInfo }
  /** One key's state. */
  | { readonly type: 'point'; readonly key: Uint8Array };

/** How to write a snapshot. */
export interface SnapshotWriteOptions {
  /** gzip-compress the body (the header and trailer stay plain). Default false. */
  readonly compress?: boolean | undefined;
  /** zlib level 0..9 when compressing. Default 1: the state's values are often already dense. */
  readonly compressionLevel?: number | undefined;
  /** Bytes of entries encoded between two yields to the event loop. Default 256 KiB. */
  readonly chunkBytes?: number | undefined;
  /** Clock for the creation time (ms since the epoch). Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  /**
   * The transaction table as of the view's offset (`TxnTable.capture()` in the same turn as the
   * view), written whole after the key entries of a full or incremental snapshot. Default: none.
   */
  readonly txns?: TxnCapture | undefined;
  /**
   * Stops the write at its next chunk (and before its sync and rename): it rejects with `WalError`
   * `WAL_CLOSED` and removes its temp file. The key-value view's close aborts it.
   */
  readonly signal?: AbortSignal | undefined;
}

/** A snapshot just written: its listing row and its checksum. */
export interface WrittenSnapshot extends SnapshotInfo {
  /** SHA-256 of the file before its trailer, lowercase hex (the trailer holds it too). */
  readonly checksum: string;
}

/**
 * Writes a snapshot of `view` into `dir` (created, and its creation made durable, if missing) as
 * `<id>.snap`: `<id>.snap.tmp` -> header, body in chunks, trailer -> `fdatasync` -> rename ->
 * directory fsync. After a crash at any point the directory holds the old snapshots, plus either
 * nothing new or the complete new file (and maybe a `.snap.tmp` left over, which readers ignore).
 *
 * The body is encoded `chunkBytes` at a time, with a turn of the event loop between chunks, so
 * appends, reads and tails go on during the write; at most a chunk (and zlib's window) is held in
 * memory. The view never changes, so the file is the state as of `view.nextOffset`. The write
 * owns the view: it releases it when it ends, done or failed (an open view costs the state a
 * pre-image per key changed meanwhile), so take a view per snapshot.
 *
 * Throws `RangeError` for a point snapshot of a key the view does not hold, or an incremental
 * whose base the view cannot list changes since (`view.canListChangesSince(base.walOffset)`), and
 * `WalError` `WAL_NO_SPACE` / `WAL_IO_ERROR` when the disk fails (the temp file is removed when it
 * still can be).
 */
export async function writeSnapshot(
  storage: Storage,
  dir: string,
  view: StateView,
  request: SnapshotRequest,
  options: SnapshotWriteOptions = {},
): Promise<WrittenSnapshot> {
  try {
    return await writeViewSnapshot(storage, dir, view, request, options);
  } finally {
    view.release();
  }
}

async function writeViewSnapshot(storage: Storage, dir: string, view: StateView, request: SnapshotRequest, options: SnapshotWriteOptions): Promise<WrittenSnapshot> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`options.chunkBytes must be a positive integer, got ${chunkBytes}`);
  const level = options.compressionLevel ?? 1;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`options.compressionLevel must be an integer in 0..9, got ${level}`);
  const body = await planBody(view, request);
  const txns = request.type === 'point' ? undefined : options.txns;
  const header: SnapshotHeader = {
    type: request.type,
    isCompressed: options.compress === true,
    walOffset: view.nextOffset,
    putCount: body.putCount,
    tombstoneCount: body.tombstoneCount,
    txnCount: txns === undefined ? 0 : txns.inDoubt.length + txns.ended.length,
    createdMs: createdMsAfter(request, (options.now ?? Date.now)(), view.nextOffset),
    nonce: randomInt(0x1_0000_0000),
    base: request.type === 'incremental' ? baseParts(request.base) : undefined,
  };
  const headerBytes = encodeSnapshotHeader(header);
  const id = formatSnapshotId(header);
  const path = join(dir, snapshotFileName(id));
  const tempPath = join(dir, `${id}${SNAPSHOT_TEMP_SUFFIX}`);
  let file: StorageFile | undefined;
  try {
    ensureDirectory(storage, dir);
    file = storage.open(tempPath, 'create-new');
    const sink = new HashingSink(file);
    sink.write(headerBytes);
    const chunks = untilAborted(withTxns(encodeBody(body.entries, chunkBytes), txns, chunkBytes), options.signal);
    if (header.isCompressed) await writeCompressed(chunks, level, sink);
    else for await (const chunk of chunks) sink.write(chunk);
    throwIfAborted(options.signal);
    const checksum = sink.digest();
    sink.writeUnhashed(encodeSnapshotTrailer(sink.bytes - headerBytes.length, checksum));
    await file.datasyncAsync();
    throwIfAborted(options.signal);
    const sizeBytes = sink.bytes;
    file.close();
    file = undefined;
    storage.rename(tempPath, path);
    storage.syncDir(dir);
    return { ...snapshotInfoOf(header, path, sizeBytes), checksum: Buffer.from(checksum).toString('hex') };
  } catch (error) {
    if (file !== undefined) removeTemp(storage, file, tempPath);
    throw error instanceof StorageError ? walErrorFromStorage(error, `writing snapshot ${id}`, { snapshot: id }) : error;
  }
}

/** What goes in a body: the counts for the header, and its entries. */
interface BodyPlan {
  readonly putCount: number;
  readonly tombstoneCount: number;
  readonly entries: BodyEntries;
}

/** A body's entries: the keys of a view that pass a filter, or one key's entry. */
type BodyEntries = { readonly view: StateView; readonly filter: CursorFilter } | { readonly point: KeyEntry };

async function planBody(view: StateView, request: SnapshotRequest): Promise<BodyPlan> {
  if (request.type === 'full') return { putCount: view.size, tombstoneCount: 0, entries: { view, filter: { since: 0, withDeletions: false } } };
  if (request.type === 'point') {
    const point = view.get(request.key);
    if (point === undefined) throw new RangeError('request.key: the view holds no such key');
    return { putCount: 1, tombstoneCount: 0, entries: { point } };
  }
  const since = request.base.walOffset;
  if (request.base.type === 'point') throw new RangeError('request.base: a point snapshot cannot be a base');
  if (!view.canListChangesSince(since)) {
    throw new RangeError(`request.base: the view (at ${view.nextOffset}, changes known since ${view.changesKnownSince}) cannot list changes since ${since}`);
  }
  // The header comes first and holds the counts, so the changes are counted in a first pass over
  // the view (with turns of the event loop); the second encodes them.
  const filter = { since, withDeletions: true };
  const cursor = new EntryCursor(BATCH_KEYS, filter);
  let putCount = 0;
  let tombstoneCount = 0;
  let scanned = 0;
  while (!cursor.isDone) {
    view.read(cursor, Number.POSITIVE_INFINITY);
    for (let i = 0; i < cursor.count; i++) {
      if (cursor.valueLengths[i] === DELETED) tombstoneCount++;
      else putCount++;
    }
    scanned += cursor.scanned;
    if (scanned >= SCANNED_KEYS_PER_TURN && !cursor.isDone) {
      scanned = 0;
      await nextTurn();
    }
  }
  return { putCount, tombstoneCount, entries: { view, filter } };
}

function createdMsAfter(request: SnapshotRequest, now: number, walOffset: number): number {
  if (request.type !== 'incremental' || request.base.walOffset !== walOffset) return now;
  return Math.max(now, request.base.createdMs + 1);
}

function baseParts(base: SnapshotInfo): SnapshotHeader['base'] {
  const parts = parseSnapshotId(base.id);
  if (parts === undefined) throw new RangeError(`request.base.id: not a snapshot id: ${base.id}`);
  return parts;
}

/**
 * Encodes the entries into chunks of about `chunkBytes`, yielding to the event loop after each
 * chunk and after each {@link SCANNED_KEYS_PER_TURN} keys scanned without filling one (an
 * incremental skips the unchanged keys). Entries are read from the view a batch at a time straight
 * into the chunk's room, and encoded in the same turn (the ranges a read gives are valid only until
 * the state changes). The chunk's buffer is reused once the consumer asks for the next one:
 * consumers are done with a chunk by then (storage writes are synchronous, and
 * {@link writeCompressed} waits until zlib has taken it). One buffer rather than one per chunk:
 * allocating 256 KiB per chunk took a fifth to a third of the encode time (docs/state.md).
 */
async function* encodeBody(entries: BodyEntries, chunkBytes: number): AsyncGenerator<Buffer> {
  if ('point' in entries) {
    const { key, value, offset, timestamp } = entries.point;
    const buf = Buffer.allocUnsafe(SNAPSHOT_ENTRY_HEADER_BYTES + key.length + value.length);
    const at = encodeSnapshotEntryHeader(buf, 0, 'put', key.length, value.length, offset, timestamp);
    copyBytes(key, 0, key.length, buf, at);
    copyBytes(value, 0, value.length, buf, at + key.length);
    yield buf;
    return;
  }
  const { view } = entries;
  const cursor = new EntryCursor(BATCH_KEYS, entries.filter, SNAPSHOT_ENTRY_HEADER_BYTES);
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let position = 0;
  let scanned = 0;
  while (!cursor.isDone) {
    view.read(cursor, chunk.length - position);
    if (cursor.scanned > 0) {
      position = encodeEntries(cursor, chunk, position);
      scanned += cursor.scanned;
      if (scanned >= SCANNED_KEYS_PER_TURN) {
        scanned = 0;
        await nextTurn();
      }
      continue;
    }
    if (cursor.isDone) break;
    // The next entry does not fit in the room left: the chunk is done.
    if (position > 0) {
      yield chunk.subarray(0, position);
      position = 0;
      scanned = 0;
      await nextTurn();
      continue;
    }
    // It is larger than a chunk: a buffer of its own.
    view.read(cursor, Number.POSITIVE_INFINITY, 1);
    const own = Buffer.allocUnsafe(SNAPSHOT_ENTRY_HEADER_BYTES + cursor.keyLengths[0]! + Math.max(cursor.valueLengths[0]!, 0));
    encodeEntries(cursor, own, 0);
    yield own;
    await nextTurn();
  }
  if (position > 0) yield chunk.subarray(0, position);
}

/** The chunks of `keyChunks`, then the transaction entries of `txns` in chunks of about `chunkBytes`. */
async function* withTxns(keyChunks: AsyncGenerator<Buffer>, txns: TxnCapture | undefined, chunkBytes: number): AsyncGenerator<Buffer> {
  yield* keyChunks;
  if (txns === undefined) return;
  let parts: Buffer[] = [];
  let bytes = 0;
  const add = (kind: 'txn_in_doubt' | 'txn_ended', id: Buffer, value: Buffer, offset: number, timestamp: number): Buffer | undefined => {
    const entry = Buffer.allocUnsafe(SNAPSHOT_ENTRY_HEADER_BYTES + id.length + value.length);
    const at = encodeSnapshotEntryHeader(entry, 0, kind, id.length, value.length, offset, timestamp);
    entry.set(id, at);
    entry.set(value, at + id.length);
    parts.push(entry);
    bytes += entry.length;
    if (bytes < chunkBytes) return undefined;
    const chunk = Buffer.concat(parts, bytes);
    parts = [];
    bytes = 0;
    return chunk;
  };
  for (const txn of txns.inDoubt) {
    const chunk = add('txn_in_doubt', txn.id, txn.payload, txn.prepareOffset, txn.prepareTimestamp);
    if (chunk !== undefined) yield chunk;
  }
  for (const txn of txns.ended) {
    const chunk = add('txn_ended', txn.id, encodeEndedTxnValue(txn.outcome, txn.prepareOffset), txn.endOffset, txn.endTimestamp);
    if (chunk !== undefined) yield chunk;
  }
  if (bytes > 0) yield Buffer.concat(parts, bytes);
}

/** Encodes the entries `cursor` holds into `buf` at `position` (which has room); returns the position after them. */
function encodeEntries(cursor: EntryCursor, buf: Buffer, position: number): number {
  const { keyBuffers, keyStarts, keyLengths, valueBuffers, valueStarts, valueLengths, offsets, timestamps } = cursor;
  let at = position;
  for (let i = 0; i < cursor.count; i++) {
    const keyLength = keyLengths[i]!;
    const valueLength = valueLengths[i]!;
    const isDeleted = valueLength === DELETED;
    at = encodeSnapshotEntryHeader(buf, at, isDeleted ? 'tombstone' : 'put', keyLength, isDeleted ? 0 : valueLength, offsets[i]!, timestamps[i]!);
    const keyBuffer = keyBuffers[i]!;
    const keyStart = keyStarts[i]!;
    if (isDeleted) {
      copyBytes(keyBuffer, keyStart, keyLength, buf, at);
      at += keyLength;
    } else if (valueBuffers[i] === keyBuffer && valueStarts[i] === keyStart + keyLength) {
      // Key and value side by side in the state's run: one copy.
      copyBytes(keyBuffer, keyStart, keyLength + valueLength, buf, at);
      at += keyLength + valueLength;
    } else {
      copyBytes(keyBuffer, keyStart, keyLength, buf, at);
      copyBytes(valueBuffers[i]!, valueStarts[i]!, valueLength, buf, at + keyLength);
      at += keyLength + valueLength;
    }
  }
  return at;
}

/**
 * Compresses `chunks` with gzip into `sink`, handing zlib (which runs on the thread pool) one
 * chunk at a time and waiting until it has taken it, so that the encoder may reuse the chunk's
 * buffer. Throws the sink's error when writing fails (rather than the stream's abort).
 */
/** `chunks`, ending with `WAL_CLOSED` once `signal` aborts (checked before each chunk). */
async function* untilAborted(chunks: AsyncIterable<Buffer>, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    throwIfAborted(signal);
    yield chunk;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new WalError('WAL_CLOSED', 'the snapshot write stopped: the key-value view is closing', {});
}

async function writeCompressed(chunks: AsyncIterable<Buffer>, level: number, sink: HashingSink): Promise<void> {
  const gzip = createGzip({ level, chunkSize: 256 * 1024 });
  let writeError: unknown;
  gzip.on('data', (compressed: Buffer) => {
    if (writeError !== undefined) return;
    try {
      sink.write(compressed);
    } catch (error) {
      writeError = error;
      gzip.destroy();
    }
  });
  const ended = finished(gzip);
  // Observed from the start: it rejects as soon as the stream fails, maybe while a write is awaited.
  ended.catch(() => {});
  try {
    for await (const chunk of chunks) {
      // A destroyed stream may never call back a write zlib had taken: the stream's end decides then.
      const taken = new Promise<void>((resolve, reject) => gzip.write(chunk, (error) => (error ? reject(error) : resolve())));
      await Promise.race([taken, ended]);
    }
    gzip.end();
    await ended;
    // A failure in the last output may come after the stream has ended in its own eyes.
    if (writeError !== undefined) throw writeError;
  } catch (error) {
    gzip.destroy();
    await ended.catch(() => {});
    throw writeError ?? error;
  }
}

/** Appends to a file at its end while hashing what it writes. */
class HashingSink {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(private readonly file: StorageFile) {}

  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.writeUnhashed(chunk);
  }

  /** Writes bytes the checksum does not cover (the trailer). */
  writeUnhashed(chunk: Buffer): void {
    this.file.writev([chunk], this.bytes);
    this.bytes += chunk.length;
  }

  /** The SHA-256 of everything written so far (call once). */
  digest(): Buffer {
    return this.hash.digest();
  }
}

/** Creates `dir` when missing and makes its entry durable in its parent. */
function ensureDirectory(storage: Storage, dir: string): void {
  if (storage.exists(dir)) return;
  storage.mkdirp(dir);
  storage.syncDir(dirname(dir));
}

function removeTemp(storage: Storage, file: StorageFile, tempPath: string): void {
  try {
    file.close();
  } catch {
    // Already failing; the close error adds nothing.
  }
  try {
    storage.unlink(tempPath);
  } catch {
    // A dead disk or process: the temp file stays as debris, which readers ignore.
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
