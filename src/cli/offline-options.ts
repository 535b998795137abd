import type { Command } from 'commander';
import { isWalError, type WalError } from '../errors.js';
import type { OfflineDir } from '../offline/offline-dir.js';
import { DEFAULT_SNAPSHOT_DIR } from '../state/state-options.js';
import { CommandFailure } from './exit-codes.js';

/** The options every offline command (`verify`, `dump`, `repair`) takes. */
export interface OfflineCommandOptions {
  readonly dataDir: string;
  readonly json: boolean;
}

/** Adds `--data-dir` (required) and `--json` to an offline command. */
export function addOfflineOptions(command: Command): Command {
  return command
    .requiredOption('--data-dir <path>', 'the data directory (the log, its indexes and snapshots)')
    .option('--json', 'machine-readable output (snake_case field names)', false);
}

/** Adds `--read-only`: read a directory a server holds, without its lock. */
export function addReadOnlyOption(command: Command): Command {
  return command.option('--read-only', 'take no lock and write nothing: works while a server holds the directory (a live log may change while it is read)', false);
}

/** Adds `--snapshot-dir` (the server's `snapshot_dir`). */
export function addSnapshotDirOption(command: Command): Command {
  return command.option('--snapshot-dir <path>', 'the server\'s snapshot_dir; a relative path is inside --data-dir', DEFAULT_SNAPSHOT_DIR);
}

/**
 * A failure of an offline tool as the CLI reports it (exit 1): the error's code first, then its
 * message, with the way out for a directory a server holds.
 */
export function offlineFailure(error: WalError, readOnlyHint: boolean): CommandFailure {
  const hint = error.code === 'WAL_LOCKED' ? (readOnlyHint ? '; stop the server first, or pass --read-only to read it as it is' : '; stop the server first') : '';
  return new CommandFailure(`${error.code}: ${error.message}${hint}`);
}

/**
 * Opens the data directory of an offline command (with its lock unless `readOnly`), runs `body`,
 * and releases it. `WalError`s become {@link CommandFailure}s naming their code.
 */
export async function withOfflineDir<T>(options: OfflineCommandOptions, readOnly: boolean, readOnlyHint: boolean, body: (dir: OfflineDir) => Promise<T>): Promise<T> {
  // Loaded only here, as the engine is by `wald serve`: the client commands need none of it.
  const { OfflineDir } = await import('../offline/offline-dir.js');
  let dir: OfflineDir;
  try {
    dir = OfflineDir.open(options.dataDir, { readOnly });
  } catch (error) {
    throw isWalError(error) ? offlineFailure(error, readOnlyHint) : error;
  }
  try {
    return await body(dir);
  } catch (error) {
    throw isWalError(error) ? offlineFailure(error, readOnlyHint) : error;
  } finally {
    dir.close();
  }
}
