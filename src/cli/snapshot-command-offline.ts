import { resolve as resolvePath } from 'node:path';
import { Option, type Command } from 'commander';
import { parseSnapshotId } from '../codec/snapshot-id.js';
import { isWalError } from '../errors.js';
import { snapshotPath, resolveChain, verifySnapshot } from '../state/snapshot-reader.js';
import { restoreSnapshot, type RestorePhase } from '../state/snapshot-restore.js';
import { DEFAULT_SNAPSHOT_DIR, snapshotDirOf } from '../state/state-options.js';
import { NodeStorage } from '../storage/node-storage.js';
import { CommandFailure, UsageError } from './exit-codes.js';
import { printJson, printText } from './output.js';
import { bytesProgress } from './snapshot-command-progress.js';
import { formatSnapshotTable, rowOfFile, type SnapshotRow } from './snapshot-command-view.js';
import { addUnaryClientOptions, type UnaryCommandOptions } from './wal-client.js';
import { formatFields } from './table.js';

/** A verdict as `wald snapshot verify` prints it, under the proto's field names with `--json`. */
export interface VerifyVerdict {
  readonly valid: boolean;
  /** The chain, base first, with the recomputed checksums; empty when not valid. */
  readonly chain: SnapshotRow[];
  readonly failedPath: string;
  readonly reason: string;
}

interface RestoreOptions {
  readonly dataDir: string;
  readonly snapshotDir?: string;
  readonly fromDataDir?: string;
  readonly verify: boolean;
  readonly overwrite: boolean;
  readonly json: boolean;
}

const PHASE_LABELS: Readonly<Record<RestorePhase, string>> = { verify: 'verifying', copy: 'copying' };

/**
 * Registers `wald snapshot verify` (an id asks the server through `verifyOnServer`, a path is
 * verified here, offline) and `wald snapshot restore` (offline) under `snapshot`.
 */
export function registerOfflineSnapshotCommands(snapshot: Command, verifyOnServer: (options: UnaryCommandOptions, id: string) => Promise<VerifyVerdict>): void {
  const verify = snapshot
    .command('verify')
    .summary('verify a snapshot and its chain (an id on the server, a path offline)')
    .description(
      'Verify a snapshot: header, every entry, SHA-256, and for an incremental every file of its chain down to its full ' +
        'base (found by id beside it). An ID asks the server (VerifySnapshot); a PATH reads the file here, offline, ' +
        'with a progress bar on a terminal. Exit 0 when valid, 1 when not (the file at fault and the reason are printed).',
    )
    .argument('<id-or-path>', 'a snapshot id, or the path of a .snap file');
  addUnaryClientOptions(verify).action(async (target: string, options: UnaryCommandOptions) => {
    const verdict = parseSnapshotId(target) !== undefined ? await verifyOnServer(options, target) : await verifyFile(target, options.json);
    printVerdict(target, verdict, options.json);
    if (!verdict.valid) throw new CommandFailure(`snapshot ${target} is not valid: ${verdict.failedPath}: ${verdict.reason}`);
  });

  snapshot
    .command('restore')
    .summary('build a new data directory from a snapshot, offline')
    .description(
      'Build a new data directory from a full or incremental snapshot, offline: an empty log whose first offset is the ' +
        "snapshot's wal offset, and the snapshot's chain copied into <data-dir>/snapshots, so that a server started on it " +
        'answers Get as the state was at that offset and gives its next append that offset. The source is a PATH, or an ID ' +
        'looked up in --snapshot-dir or in the snapshot directory of --from-data-dir (<dir>/snapshots). Each copied file is ' +
        'checked against its SHA-256; --verify also checks every entry of the chain first. A non-empty --data-dir is ' +
        'refused (exit 1) unless --overwrite. Stop any server on --data-dir first.',
    )
    .argument('<id-or-path>', 'a snapshot id, or the path of a .snap file')
    .addOption(new Option('--data-dir <dir>', 'the new data directory').makeOptionMandatory())
    .option('--snapshot-dir <dir>', 'where to find an ID: a snapshot directory')
    .option('--from-data-dir <dir>', `where to find an ID: the ${DEFAULT_SNAPSHOT_DIR}/ directory of this data directory`)
    .option('--verify', 'verify every entry of the chain before writing anything', false)
    .option('--overwrite', 'remove what --data-dir holds (a log, snapshots) first', false)
    .option('--json', 'print JSON instead of text', false)
    .action(async (target: string, options: RestoreOptions) => {
      const source = sourcePath(target, options);
      const progress = bytesProgress(options.json);
      let result: Awaited<ReturnType<typeof restoreSnapshot>>;
      try {
        result = await restoreSnapshot({
          storage: new NodeStorage(),
          source,
          dataDir: options.dataDir,
          verify: options.verify,
          overwrite: options.overwrite,
          onProgress: (phase, done, total) => progress.update(PHASE_LABELS[phase], done, total),
        });
      } catch (error) {
        if (isWalError(error)) throw new CommandFailure(`${error.code}: ${error.message}`);
        throw error;
      } finally {
        progress.stop();
      }
      const chain = result.chain.map((info) => rowOfFile(info, info.checksum));
      if (options.json) {
        printJson({
          snapshot_id: result.snapshot.id,
          wal_offset: result.snapshot.walOffset,
          data_dir: result.dataDir,
          snapshot_dir: result.snapshotDir,
          first_offset: result.firstOffset,
          verified: result.isVerified,
          files_removed: result.filesRemoved,
          bytes_copied: result.bytesCopied,
          chain,
        });
        return;
      }
      printText(
        formatFields([
          ['snapshot', result.snapshot.id],
          ['data dir', result.dataDir],
          ['snapshot dir', result.snapshotDir],
          ['first offset', String(result.firstOffset)],
          ['verified', result.isVerified ? 'every entry' : 'checksums'],
          ['files removed', String(result.filesRemoved)],
          ['bytes copied', String(result.bytesCopied)],
        ]) + formatSnapshotTable(chain),
      );
    });
}

/** The file `target` names: a path as is, an id in `--snapshot-dir` or `--from-data-dir`'s snapshot directory. */
function sourcePath(target: string, options: RestoreOptions): string {
  if (parseSnapshotId(target) === undefined) return target;
  if (options.snapshotDir !== undefined && options.fromDataDir !== undefined) throw new UsageError('give --snapshot-dir or --from-data-dir, not both');
  const dir = options.snapshotDir ?? (options.fromDataDir === undefined ? undefined : snapshotDirOf(options.fromDataDir, DEFAULT_SNAPSHOT_DIR));
  if (dir === undefined) throw new UsageError(`${target} is a snapshot id: say where it is with --snapshot-dir or --from-data-dir (or give its path)`);
  return snapshotPath(resolvePath(dir), target);
}

/** Verifies the snapshot file at `path` and its chain beside it, offline, with a progress bar unless `isJson`. */
async function verifyFile(path: string, isJson: boolean): Promise<VerifyVerdict> {
  const storage = new NodeStorage();
  const chain = resolveChain(storage, path);
  const total = chain.ok ? chain.chain.reduce((sum, info) => sum + info.sizeBytes, 0) : 0;
  const progress = bytesProgress(isJson);
  const done = new Map<string, number>();
  try {
    const verdict = await verifySnapshot(storage, path, {
      onProgress: (file, bytesRead) => {
        done.set(file, bytesRead);
        progress.update('verifying', [...done.values()].reduce((a, b) => a + b, 0), total);
      },
    });
    if (!verdict.ok) return { valid: false, chain: [], failedPath: verdict.file, reason: verdict.reason };
    return { valid: true, chain: verdict.chain.map((info, i) => rowOfFile(info, verdict.checksums[i]!)), failedPath: '', reason: '' };
  } finally {
    progress.stop();
  }
}

function printVerdict(target: string, verdict: VerifyVerdict, json: boolean): void {
  if (json) {
    printJson({ valid: verdict.valid, chain: verdict.chain, failed_path: verdict.failedPath, reason: verdict.reason });
    return;
  }
  if (!verdict.valid) {
    printText(formatFields([['valid', 'no'], ['failed file', verdict.failedPath], ['reason', verdict.reason]]));
    return;
  }
  printText(`${target}: valid (${verdict.chain.length} file${verdict.chain.length === 1 ? '' : 's'} in the chain)\n${formatSnapshotTable(verdict.chain)}`);
}
