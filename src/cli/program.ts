import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAppendCommand } from './append-command.js';
import { registerAuthCommand } from './auth-command.js';
import { registerCompactCommand, registerDeleteSegmentsBeforeCommand } from './compact-command.js';
import { registerDumpCommand } from './dump-command.js';
import { CommandFailure, EXIT_CODES, UsageError, type ExitCode } from './exit-codes.js';
import { registerFlushAllCommand } from './flush-all-command.js';
import { registerFollowersCommand } from './followers-command.js';
import { registerGetCommand } from './get-command.js';
import { registerKeysCommand } from './keys-command.js';
import { printFailure, printRpcError } from './output.js';
import { registerPromoteCommand } from './promote-command.js';
import { registerReadCommand } from './read-command.js';
import { registerRepairCommand } from './repair-command.js';
import { registerReplayCommand } from './replay-command.js';
import { RpcError } from './rpc-error.js';
import { registerServeCommand } from './serve-command.js';
import { registerSnapshotCommand } from './snapshot-command.js';
import { registerStatsCommand } from './stats-command.js';
import { registerSyncCommand } from './sync-command.js';
import { registerTailCommand } from './tail-command.js';
import { registerTxnCommand } from './txn-command.js';
import { registerVerifyCommand } from './verify-command.js';

function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The `wald` command with every subcommand registered. Errors are thrown, never `process.exit`. */
export function buildProgram(): Command {
  const program = new Command('wald')
    .description('wald: a durable write-ahead log served over gRPC')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 server error (status and reason are printed) or a fault found by verify or dump, 2 usage error.\nSee docs/cli.md for examples.',
    );
  registerServeCommand(program);
  registerAppendCommand(program);
  registerReadCommand(program);
  registerTailCommand(program);
  registerStatsCommand(program);
  registerFollowersCommand(program);
  registerSyncCommand(program);
  registerGetCommand(program);
  registerKeysCommand(program);
  registerFlushAllCommand(program);
  registerTxnCommand(program);
  registerSnapshotCommand(program);
  registerAuthCommand(program);
  registerCompactCommand(program);
  registerDeleteSegmentsBeforeCommand(program);
  registerVerifyCommand(program);
  registerDumpCommand(program);
  registerRepairCommand(program);
  registerReplayCommand(program);
  registerPromoteCommand(program);
  return program;
}

/** Whether the run asked for JSON output (for the format of error messages). */
function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

/**
 * Runs `wald` with `argv` (as `process.argv`) and returns the exit code: 0 ok, 1 server error,
 * 2 usage error (commander's own and the commands').
 */
export async function runCli(argv: readonly string[]): Promise<ExitCode> {
  const json = wantsJson(argv);
  try {
    await buildProgram().parseAsync([...argv]);
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help) already.
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    }
    if (error instanceof UsageError) {
      printFailure(`${error.message} (run with --help for usage)`, json);
      return EXIT_CODES.usage;
    }
    if (error instanceof RpcError) {
      printRpcError(error, json);
      return EXIT_CODES.serverError;
    }
    if (error instanceof CommandFailure) {
      printFailure(error.message, json);
      return EXIT_CODES.serverError;
    }
    printFailure(error instanceof Error ? (error.stack ?? error.message) : String(error), json);
    return EXIT_CODES.serverError;
  }
}
