import { snapshotDirOf } from '../state/state-options.js';
import { listSnapshots, verifySnapshot } from '../state/snapshot-reader.js';
import type { SnapshotType } from '../codec/snapshot-file.js';
import type { Storage } from '../storage/storage.js';
import type { LogFault } from './log-fault.js';
import { verifyLog, type LogVerification } from './log-verifier.js';
import { NO_PROGRESS, type Progress } from './progress.js';

/** One snapshot as `wald verify` found it. */
export interface SnapshotCheck {
  readonly id: string;
  readonly path: string;
  readonly type: SnapshotType;
  readonly walOffset: number;
  /** It verified, with every file of its chain. */
  readonly isVerified: boolean;
}

/** What {@link verifyDataDir} found: the log's report, the snapshots, and every fault. */
export interface DataDirVerification extends LogVerification {
  readonly snapshotDir: string;
  readonly snapshots: SnapshotCheck[];
  /** Snapshots that verified (with their chains). */
  readonly snapshotsVerified: number;
}

/** What {@link verifyDataDir} checks besides the log. */
export interface VerifyDataDirOptions {
  /** The `snapshot_dir` of the server (relative: inside `dir`); default `snapshots`. */
  readonly snapshotDir: string;
  readonly progress?: Progress | undefined;
  /** The directory may be in use by a server (read without its lock): see `VerifyLogOptions.isLive`. */
  readonly isLive?: boolean | undefined;
}

/**
 * Checks a whole data directory offline: the log ({@link verifyLog}) and every snapshot in the
 * snapshot directory with the state layer's `verifySnapshot` (header CRC, SHA-256, entries, and the
 * chain of an incremental down to its full base). A snapshot that does not verify, or a `.snap`
 * file whose header is unreadable, is a `snapshot` fault; `.snap.tmp` files are notes.
 */
export async function verifyDataDir(storage: Storage, dir: string, options: VerifyDataDirOptions): Promise<DataDirVerification> {
  const progress = options.progress ?? NO_PROGRESS;
  const log = await verifyLog(storage, dir, { progress, isLive: options.isLive });
  const snapshotDir = snapshotDirOf(dir, options.snapshotDir);
  const listing = listSnapshots(storage, snapshotDir);
  const faults: LogFault[] = [...log.faults];
  const notes = [...log.notes];
  for (const problem of listing.unreadable) faults.push({ kind: 'snapshot', file: problem.file, position: undefined, reason: problem.reason });
  for (const name of listing.tempFiles) notes.push(`${name} in ${snapshotDir}: a snapshot write cut off by a crash (or under way)`);
  for (const info of listing.snapshots) progress.addTotal(info.sizeBytes);
  const snapshots: SnapshotCheck[] = [];
  for (const info of listing.snapshots) {
    let done = 0;
    const result = await verifySnapshot(storage, info.path, {
      onProgress: (file, bytesRead) => {
        if (file !== info.path || bytesRead <= done) return;
        progress.advance(bytesRead - done);
        done = bytesRead;
      },
    });
    if (!result.ok) {
      const inChain = result.file === info.path ? '' : ` (in its chain: ${result.file})`;
      faults.push({ kind: 'snapshot', file: info.path, position: undefined, reason: `${result.reason}${inChain}` });
    }
    snapshots.push({ id: info.id, path: info.path, type: info.type, walOffset: info.walOffset, isVerified: result.ok });
  }
  return { ...log, faults, notes, snapshotDir, snapshots, snapshotsVerified: snapshots.filter((s) => s.isVerified).length };
}
