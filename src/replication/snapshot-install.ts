import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { SNAPSHOT_TRAILER_BYTES } from '../codec/snapshot-file.js';
import { snapshotFileName } from '../codec/snapshot-id.js';
import type { EpochStart } from '../codec/epoch-history-file.js';
import { TRUNCATED_DIR } from '../engine/truncate-log-from.js';
import { WalError } from '../errors.js';
import type { GetSnapshotResponse, SnapshotInfo } from '../gen/wald/v1/snapshot.js';
import { restoreSnapshot } from '../state/snapshot-restore.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import type { LeaderChannel } from './leader-channel.js';

/** The marker that says the staged chain is complete and verified: its restore may be (re)run. */
const READY_MARKER = 'READY';

/** What the follower adopts from its leader for the new log: the frame seed and epoch history. */
export interface LeaderLogIdentity {
  readonly frameSeed: number;
  readonly epochHistory: readonly EpochStart[];
}

/** What {@link installLeaderSnapshot} did. */
export interface SnapshotInstallReport {
  readonly snapshotId: string;
  /** The offset the follower's log starts at now (the snapshot's wal offset). */
  readonly firstOffset: number;
  /** Files of the chain fetched (the snapshot, and the bases of an incremental). */
  readonly filesFetched: number;
  readonly bytesFetched: number;
}

/** The staging directory of a follower's snapshot installs: beside the data directory, never inside it. */
export function installStagingDir(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}.install`;
}

/**
 * Installs the leader's snapshot `snapshotId` as the follower's state and log start, offline (the
 * follower's server is stopped and its log closed):
 *
 * 1. Each file of the chain (the snapshot, then the base of an incremental, and so on) is fetched
 *    with GetSnapshot into the staging directory beside the data directory (temp file, fdatasync,
 *    rename), and its SHA-256 compared with the checksum the leader sent; a mismatch throws
 *    `WAL_CORRUPTION` and nothing in the data directory has changed.
 * 2. A `READY` marker is written durably: from now on the staged chain is what the data directory
 *    must become, and {@link resumeSnapshotInstall} finishes it after a crash.
 * 3. `restoreSnapshot` replaces the data directory's log and snapshots with an empty log at the
 *    snapshot's offset (with the leader's frame seed and epoch history, so the leader's frames check
 *    out and epochs compare) and the chain (verified entry by entry). The side directories of
 *    earlier truncations (`truncated/`) are kept.
 * 4. The marker and the staged files are removed.
 *
 * A crash before 2 leaves the old log as it was (the staged files are fetched again); after 2 the
 * next start finishes the install before the log is opened.
 */
/** Most files of one snapshot chain a follower fetches (a full base and its incrementals). */
export const MAX_CHAIN_FILES = 10_000;

export async function installLeaderSnapshot(
  channel: LeaderChannel,
  storage: Storage,
  dataDir: string,
  snapshotId: string,
  identity: LeaderLogIdentity,
  logger: Logger,
  snapshotDir?: string,
): Promise<SnapshotInstallReport> {
  const staging = installStagingDir(dataDir);
  const isNew = !storage.exists(staging);
  storage.mkdirp(staging);
  // Its entry durable too: a power cut must not take the staging directory, READY with it.
  if (isNew) storage.syncDir(dirname(staging));
  for (const name of storage.list(staging)) storage.unlink(join(staging, name));
  let id: string | undefined = snapshotId;
  let head: SnapshotInfo | undefined;
  let files = 0;
  let bytes = 0;
  // Each base sorts before the snapshot built on it (ids order by offset, then creation), so a
  // leader cannot make the walk loop; the bound only caps what a broken one could make it fetch.
  for (let depth = 0; id !== undefined && id !== '' && depth < MAX_CHAIN_FILES; depth++) {
    const info = await fetchSnapshotFile(channel, storage, staging, id);
    head ??= info;
    files++;
    bytes += Number(info.sizeBytes);
    const base: string = info.baseSnapshotId;
    if (base !== '' && base >= id) throw new WalError('WAL_CORRUPTION', `snapshot ${id} names a base ${base} that does not sort before it`, { file: id, reason: 'base out of order' });
    id = base;
  }
  if (head === undefined) throw new WalError('WAL_SNAPSHOT_NOT_FOUND', `the leader sent no snapshot ${snapshotId}`, { snapshotId });
  // Never READY for a chain that does not end at a full snapshot: the restore would refuse it at
  // every start after.
  if (id !== undefined && id !== '') {
    throw new WalError('WAL_CORRUPTION', `the chain of snapshot ${snapshotId} is longer than ${MAX_CHAIN_FILES} files`, { file: snapshotId, reason: 'chain too long' });
  }
  writeFileDurably(storage, join(staging, READY_MARKER), join(staging, `${READY_MARKER}.tmp`), Buffer.from(JSON.stringify({ snapshotId, ...identity }), 'utf8'));
  logger.info({ snapshotId, files, bytes, walOffset: Number(head.walOffset) }, 'replication: snapshot fetched and checked; installing');
  const restored = await finishInstall(storage, dataDir, staging, snapshotId, identity, snapshotDir);
  return { snapshotId, firstOffset: restored, filesFetched: files, bytesFetched: bytes };
}

/**
 * Finishes an install that a crash interrupted after its chain was staged (see
 * {@link installLeaderSnapshot}, step 2); does nothing when none was. Run before the log opens.
 * Returns the snapshot id installed, or undefined.
 */
export async function resumeSnapshotInstall(storage: Storage, dataDir: string, snapshotDir?: string): Promise<string | undefined> {
  const staging = installStagingDir(dataDir);
  const marker = join(staging, READY_MARKER);
  if (!storage.exists(marker)) return undefined;
  const { snapshotId, frameSeed, epochHistory } = JSON.parse(storage.readFile(marker).toString('utf8')) as { snapshotId: string } & LeaderLogIdentity;
  await finishInstall(storage, dataDir, staging, snapshotId, { frameSeed, epochHistory }, snapshotDir);
  return snapshotId;
}

async function finishInstall(storage: Storage, dataDir: string, staging: string, snapshotId: string, identity: LeaderLogIdentity, snapshotDir: string | undefined): Promise<number> {
  const result = await restoreSnapshot({
    storage,
    source: join(staging, snapshotFileName(snapshotId)),
    dataDir,
    // Where the follower's server looks for its snapshots (state.snapshot_dir), not the default.
    snapshotDir,
    verify: true,
    overwrite: true,
    keepEntries: [TRUNCATED_DIR],
    log: { frameSeed: identity.frameSeed, epochHistory: identity.epochHistory },
  });
  storage.unlink(join(staging, READY_MARKER));
  storage.syncDir(staging);
  for (const name of storage.list(staging)) storage.unlink(join(staging, name));
  storage.syncDir(staging);
  return result.firstOffset;
}


/** Fetches one snapshot file into `dir`, checking its bytes against the checksum the leader sent. */
async function fetchSnapshotFile(channel: LeaderChannel, storage: Storage, dir: string, snapshotId: string): Promise<SnapshotInfo> {
  const path = join(dir, snapshotFileName(snapshotId));
  const temp = `${path}.tmp`;
  const call = channel.getSnapshot(snapshotId);
  let info: SnapshotInfo | undefined;
  let file: StorageFile | undefined;
  const hash = createHash('sha256');
  let position = 0;
  try {
    if (storage.exists(temp)) storage.unlink(temp);
    file = storage.open(temp, 'create-new');
    for await (const message of call as AsyncIterable<GetSnapshotResponse>) {
      const content = message.content;
      if (content?.$case === 'info') {
        info = content.value;
      } else if (content?.$case === 'chunk') {
        if (info === undefined) throw new WalError('WAL_CORRUPTION', `GetSnapshot ${snapshotId} sent bytes before its info`, { snapshotId, reason: 'no info' });
        const hashed = Number(info.sizeBytes) - SNAPSHOT_TRAILER_BYTES;
        hash.update(content.value.subarray(0, Math.max(0, Math.min(content.value.length, hashed - position))));
        file.writev([content.value], position);
        position += content.value.length;
      }
    }
    if (info === undefined) throw new WalError('WAL_CORRUPTION', `GetSnapshot ${snapshotId} sent no info`, { snapshotId, reason: 'no info' });
    if (position !== Number(info.sizeBytes)) {
      throw new WalError('WAL_CORRUPTION', `snapshot ${snapshotId}: ${position} bytes came of ${info.sizeBytes}`, { snapshotId, reason: 'short' });
    }
    // The checksum covers the file but its trailer (snapshot.proto); the trailer's own claim is
    // checked again by the restore, and every entry by its verification.
    const checksum = hash.digest('hex');
    if (checksum !== info.checksum) {
      throw new WalError('WAL_CORRUPTION', `snapshot ${snapshotId} from the leader fails its checksum (${checksum}, expected ${info.checksum})`, { snapshotId, reason: 'checksum mismatch' });
    }
    await file.datasyncAsync();
    file.close();
    file = undefined;
    storage.rename(temp, path);
    storage.syncDir(dir);
    return info;
  } finally {
    call.cancel();
    if (file !== undefined) {
      try {
        file.close();
        storage.unlink(temp);
      } catch {
        // A temp file left behind is removed by the next install.
      }
    }
  }
}
