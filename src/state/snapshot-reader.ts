import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  decodeEndedTxnValue,
  decodeSnapshotHeader,
  entryKey,
  entryValue,
  decodeSnapshotTrailer,
  MAX_SNAPSHOT_ENTRY_BYTES,
  SNAPSHOT_ENTRY_HEADER_BYTES,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_TEMP_SUFFIX,
  SNAPSHOT_TRAILER_BYTES,
  SnapshotEntryDecoder,
  type SnapshotEntry,
  type SnapshotHeader,
} from '../codec/snapshot-file.js';
import { SNAPSHOT_FILE_SUFFIX, snapshotFileName } from '../codec/snapshot-id.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import { KeyState, type KeyStateOptions } from './key-state.js';
import { snapshotInfoOf, type SnapshotInfo } from './snapshot-info.js';
import { TxnTable } from './txn-table.js';

/** Bytes read from a snapshot file at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Why a snapshot file cannot be used: the file and the reason. */
export interface SnapshotProblem {
  readonly ok: false;
  /** Path of the file at fault (in a chain, the file that failed, not the one asked for). */
  readonly file: string;
  readonly reason: string;
}

/** The snapshots of a directory, by header only. */
export interface SnapshotListing {
  /** Readable headers, in id order (wal offset, then creation). */
  readonly snapshots: SnapshotInfo[];
  /** `*.snap` files whose header is unreadable or does not match the file name. */
  readonly unreadable: SnapshotProblem[];
  /** Names of `*.snap.tmp` files: writes cut off by a crash (or under way). */
  readonly tempFiles: string[];
}

/** How to read snapshots. */
export interface SnapshotReadOptions {
  /** Bound on one entry's key + value bytes (default: the format's 2 GiB). */
  readonly maxEntryBytes?: number | undefined;
  /** Called after each chunk read, with the bytes read so far of the file being read and its size. */
  readonly onProgress?: ((file: string, bytesRead: number, fileBytes: number) => void) | undefined;
}

/** A snapshot (and the chain under an incremental) that verified. */
export interface VerifiedSnapshot {
  readonly ok: true;
  /** The files read, base first: a full snapshot, then incrementals in order (or one point snapshot). */
  readonly chain: SnapshotInfo[];
  /** SHA-256 of each file of `chain`, lowercase hex, in the same order. */
  readonly checksums: string[];
}

/** A snapshot chain loaded into a new state. */
export interface LoadedSnapshot extends VerifiedSnapshot {
  readonly state: KeyState;
  /** The transaction table as of the state's offset: the chain's last file's (empty for a version 1 file). */
  readonly txns: TxnTable;
}

/** How to load a snapshot into a state. */
export interface SnapshotLoadOptions extends SnapshotReadOptions, KeyStateOptions {
  /** `txn_max_ended` of the transaction table loaded (default that of `TxnTable`). */
  readonly txnMaxEnded?: number | undefined;
}

/** The path of snapshot `id` in `dir`. */
export function snapshotPath(dir: string, id: string): string {
  return join(dir, snapshotFileName(id));
}

/**
 * Lists the snapshots in `dir` by reading each file's header (72 bytes), sorted by id. A missing
 * directory lists nothing. Throws `WalError` `WAL_IO_ERROR` when the directory cannot be read.
 */
export function listSnapshots(storage: Storage, dir: string): SnapshotListing {
  const listing: SnapshotListing = { snapshots: [], unreadable: [], tempFiles: [] };
  let names: string[];
  try {
    if (!storage.exists(dir)) return listing;
    names = storage.list(dir).sort();
  } catch (error) {
    throw walErrorFromStorage(error, 'listing snapshots', { dir });
  }
  for (const name of names) {
    if (name.endsWith(SNAPSHOT_TEMP_SUFFIX)) listing.tempFiles.push(name);
    if (!name.endsWith(SNAPSHOT_FILE_SUFFIX)) continue;
    const info = readSnapshotInfo(storage, join(dir, name));
    if (!info.ok) listing.unreadable.push(info);
    else if (snapshotFileName(info.info.id) !== name) listing.unreadable.push({ ok: false, file: info.info.path, reason: `the file holds snapshot ${info.info.id}` });
    else listing.snapshots.push(info.info);
  }
  return listing;
}

/** The header of the snapshot file at `path` (read alone), or why it cannot be read. */
export function readSnapshotInfo(storage: Storage, path: string): { readonly ok: true; readonly info: SnapshotInfo } | SnapshotProblem {
  let file: StorageFile | undefined;
  try {
    file = storage.open(path, 'read');
    const sizeBytes = file.size();
    const buf = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
    const n = file.readSync(buf, SNAPSHOT_HEADER_BYTES, 0);
    const header = decodeSnapshotHeader(buf.subarray(0, n));
    if (!header.ok) return { ok: false, file: path, reason: header.reason };
    if (sizeBytes < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) return { ok: false, file: path, reason: 'file too short for a snapshot' };
    return { ok: true, info: snapshotInfoOf(header.value, path, sizeBytes) };
  } catch (error) {
    return { ok: false, file: path, reason: `unreadable: ${(error as Error).message}` };
  } finally {
    closeQuietly(file);
  }
}

/**
 * Verifies the snapshot at `path` and, for an incremental, every file of its chain down to a full
 * snapshot (bases are found by id in the same directory): header CRC, SHA-256, entry order,
 * counts and offsets. Reports the file and the reason of the first failure; never throws on bad
 * bytes.
 */
export async function verifySnapshot(storage: Storage, path: string, options: SnapshotReadOptions = {}): Promise<VerifiedSnapshot | SnapshotProblem> {
  const chain = resolveChain(storage, path);
  if (!chain.ok) return chain;
  const checksums: string[] = [];
  for (const info of chain.chain) {
    const checked = await readSnapshotEntries(storage, info.path, () => {}, options);
    if (!checked.ok) return checked;
    checksums.push(checked.checksum);
  }
  return { ok: true, chain: chain.chain, checksums };
}

/**
 * Loads the full or incremental snapshot at `path` into a new {@link KeyState}: its full base
 * first, then each incremental in order, verifying every file as it is read (a failure discards
 * the state and names the file). A point snapshot is not a state and is refused.
 */
export async function loadSnapshot(
  storage: Storage,
  path: string,
  options: SnapshotLoadOptions = {},
): Promise<LoadedSnapshot | SnapshotProblem> {
  const chain = resolveChain(storage, path);
  if (!chain.ok) return chain;
  const head = chain.chain[chain.chain.length - 1]!;
  if (head.type === 'point') return { ok: false, file: head.path, reason: 'a point snapshot holds one key, not a state' };
  const state = new KeyState(options);
  // Each full or incremental file carries the whole table as of its offset: the last file's is the chain's.
  let txns = new TxnTable(options.txnMaxEnded);
  const onEntry = (entry: SnapshotEntry): void => {
    if (entry.kind === 'put') state.restorePut(entry);
    else if (entry.kind === 'tombstone') state.restoreTombstone(entry);
    else if (entry.kind === 'txn_in_doubt') txns.restoreInDoubt(entryKey(entry), entry.offset, entry.timestamp, entryValue(entry));
    else {
      const { outcome, prepareOffset } = decodeEndedTxnValue(entryValue(entry));
      txns.restoreEnded({ id: entryKey(entry), outcome, prepareOffset, endOffset: entry.offset, endTimestamp: entry.timestamp });
    }
  };
  const checksums: string[] = [];
  for (const info of chain.chain) {
    txns = new TxnTable(options.txnMaxEnded);
    // Room for the keys the file can hold (each entry is at least a header), whatever its header claims.
    state.reserveForRestore(info.isCompressed ? Math.min(info.entryCount, 1 << 20) : Math.min(info.entryCount, Math.floor(info.sizeBytes / SNAPSHOT_ENTRY_HEADER_BYTES)));
    const checked = await readSnapshotEntries(storage, info.path, onEntry, options);
    if (!checked.ok) return checked;
    checksums.push(checked.checksum);
  }
  state.finishRestore(head.walOffset);
  return { ok: true, chain: chain.chain, checksums, state, txns };
}

/** What {@link loadNewestSnapshot} found. */
export interface NewestSnapshot {
  /** The newest full or incremental snapshot whose whole chain loaded, if any. */
  readonly loaded: LoadedSnapshot | undefined;
  /** Newer snapshots that failed, newest first, each with the file and reason. */
  readonly failures: SnapshotProblem[];
}

/** How {@link loadNewestSnapshot} chooses. */
export interface NewestSnapshotOptions extends SnapshotLoadOptions {
  /**
   * Snapshots whose wal offset is above this are skipped, reported as failures: they hold records
   * the log no longer has (a power cut under a lax sync policy lost them), and new records would
   * reuse those offsets. Recovery passes the log's next offset. Default: no bound.
   */
  readonly maxWalOffset?: number | undefined;
}

/**
 * Loads the newest snapshot of `dir` that verifies (with its chain), falling back to older ones
 * when a newer one fails; recovery starts from it and replays the log from its wal offset.
 */
export async function loadNewestSnapshot(storage: Storage, dir: string, options: NewestSnapshotOptions = {}): Promise<NewestSnapshot> {
  const listing = listSnapshots(storage, dir);
  const failures: SnapshotProblem[] = [];
  const candidates = listing.snapshots.filter((info) => info.type !== 'point').reverse();
  const maxWalOffset = options.maxWalOffset ?? Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate.walOffset > maxWalOffset) {
      failures.push({ ok: false, file: candidate.path, reason: `wal offset ${candidate.walOffset} is beyond the log's end (${maxWalOffset})` });
      continue;
    }
    const loaded = await loadSnapshot(storage, candidate.path, options);
    if (loaded.ok) return { loaded, failures };
    failures.push(loaded);
  }
  return { loaded: undefined, failures };
}

/**
 * The chain of the snapshot at `path`, base first, from headers alone: each incremental's base is
 * `<base id>.snap` beside it, must hold that id, and sorts before it, so the walk ends. Reports
 * the file and the reason when a header cannot be read or a base is missing; nothing is verified.
 */
export function resolveChain(storage: Storage, path: string): { readonly ok: true; readonly chain: SnapshotInfo[] } | SnapshotProblem {
  const chain: SnapshotInfo[] = [];
  let next: { path: string; id: string | undefined } | undefined = { path, id: undefined };
  while (next !== undefined) {
    const read = readSnapshotInfo(storage, next.path);
    if (!read.ok) return next.id === undefined || storage.exists(next.path) ? read : { ok: false, file: next.path, reason: `base snapshot ${next.id} is missing` };
    const info = read.info;
    if (next.id !== undefined && info.id !== next.id) return { ok: false, file: info.path, reason: `the file holds snapshot ${info.id}, not the base ${next.id}` };
    if (chain.length > 0 && info.type === 'point') return { ok: false, file: info.path, reason: 'a point snapshot cannot be a base' };
    chain.push(info);
    next = info.baseId === undefined ? undefined : { path: join(dirname(info.path), snapshotFileName(info.baseId)), id: info.baseId };
  }
  return { ok: true, chain: chain.reverse() };
}

/** One file read and verified. */
interface CheckedFile {
  readonly ok: true;
  readonly header: SnapshotHeader;
  readonly checksum: string;
}

/**
 * Reads one snapshot file in chunks, hashing the stored bytes and decoding the body (through
 * gunzip when compressed), calling `onEntry` for each entry. The SHA-256 decides first: a file
 * whose checksum fails is reported as such even when its body also fails to decode, since a
 * damaged byte explains both.
 */
async function readSnapshotEntries(
  storage: Storage,
  path: string,
  onEntry: (entry: SnapshotEntry) => void,
  options: SnapshotReadOptions,
): Promise<CheckedFile | SnapshotProblem> {
  let file: StorageFile | undefined;
  try {
    file = storage.open(path, 'read');
    const fileBytes = file.size();
    const headerBytes = await readExactly(file, SNAPSHOT_HEADER_BYTES, 0);
    const header = decodeSnapshotHeader(headerBytes);
    if (!header.ok) return { ok: false, file: path, reason: header.reason };
    const trailerBytes = fileBytes >= SNAPSHOT_TRAILER_BYTES ? await readExactly(file, SNAPSHOT_TRAILER_BYTES, fileBytes - SNAPSHOT_TRAILER_BYTES) : Buffer.alloc(0);
    const trailer = decodeSnapshotTrailer(trailerBytes, fileBytes);
    if (!trailer.ok) return { ok: false, file: path, reason: trailer.reason };
    const hash = createHash('sha256').update(headerBytes);
    const body = new BodyDecoder(new SnapshotEntryDecoder(header.value, options.maxEntryBytes ?? MAX_SNAPSHOT_ENTRY_BYTES), header.value.isCompressed, onEntry);
    const bodyEnd = SNAPSHOT_HEADER_BYTES + trailer.value.bodyBytes;
    // A plain body is decoded before the next read, so one buffer serves every read; gunzip may
    // still hold a chunk it was given, so a compressed body gets a buffer per read.
    const reused = header.value.isCompressed ? undefined : Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, trailer.value.bodyBytes));
    for (let position = SNAPSHOT_HEADER_BYTES; position < bodyEnd; ) {
      const chunk = await readExactly(file, Math.min(READ_CHUNK_BYTES, bodyEnd - position), position, reused);
      hash.update(chunk);
      await body.push(chunk);
      position += chunk.length;
      options.onProgress?.(path, position, fileBytes);
    }
    const problem = await body.finish();
    if (hash.digest('hex') !== trailer.value.checksum) return { ok: false, file: path, reason: 'checksum mismatch' };
    if (problem !== undefined) return { ok: false, file: path, reason: problem };
    return { ok: true, header: header.value, checksum: trailer.value.checksum };
  } catch (error) {
    return { ok: false, file: path, reason: `unreadable: ${(error as Error).message}` };
  } finally {
    closeQuietly(file);
  }
}

/**
 * Feeds stored body bytes to the entry decoder, through gunzip when compressed. After the first
 * problem it takes bytes and ignores them, so the caller still hashes the whole file.
 */
class BodyDecoder {
  private problem: string | undefined;
  private readonly gunzip: ReturnType<typeof createGunzip> | undefined;

  constructor(
    private readonly decoder: SnapshotEntryDecoder,
    isCompressed: boolean,
    private readonly onEntry: (entry: SnapshotEntry) => void,
  ) {
    if (!isCompressed) return;
    const gunzip = createGunzip();
    gunzip.on('data', (chunk: Buffer) => this.decode(chunk));
    gunzip.on('error', (error: Error) => {
      this.problem ??= `gzip body: ${error.message}`;
    });
    this.gunzip = gunzip;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.problem !== undefined) return;
    if (this.gunzip === undefined) {
      this.decode(chunk);
      return;
    }
    if (!this.gunzip.write(chunk)) await drainedOrClosed(this.gunzip);
  }

  /** Ends the body; the first problem found, if any. */
  async finish(): Promise<string | undefined> {
    if (this.gunzip !== undefined && this.problem === undefined) {
      this.gunzip.end();
      try {
        await finished(this.gunzip);
      } catch (error) {
        this.problem ??= `gzip body: ${(error as Error).message}`;
      }
    }
    this.gunzip?.destroy();
    return this.problem ?? this.decoder.finish();
  }

  private decode(chunk: Buffer): void {
    if (this.problem !== undefined) return;
    const problem = this.decoder.push(chunk, this.onEntry);
    if (problem === undefined) return;
    this.problem = problem;
    this.gunzip?.destroy();
  }
}

/** Resolves when `stream` drains or closes (destroyed after a problem), removing both listeners. */
function drainedOrClosed(stream: ReturnType<typeof createGunzip>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Reads `length` bytes at `position` (into `into` when given), or fewer at the end of the file. */
async function readExactly(file: StorageFile, length: number, position: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buf.subarray(filled), length - filled, position + filled);
    if (n === 0) break;
    filled += n;
  }
  return buf.subarray(0, filled);
}

function closeQuietly(file: StorageFile | undefined): void {
  try {
    file?.close();
  } catch {
    // Closing a file only read cannot lose anything.
  }
}

