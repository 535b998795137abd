import { Option, type Command } from 'commander';
import type { PromoteResponse } from '../gen/wald/v1/replication.js';
import { parseNonNegativeInteger } from './arg-parsers.js';
import { printJson, printText } from './output.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** The options of `wald promote`. */
interface PromoteOptions extends UnaryCommandOptions {
  readonly epoch?: number;
}

/** Registers `wald promote`: make a follower the leader of a new epoch. */
export function registerPromoteCommand(program: Command): void {
  const command = program
    .command('promote')
    .summary('make a follower the leader (a new epoch)')
    .description(
      'Promote (docs/replication.md): the server at --server stops following its leader, starts a new epoch and takes ' +
        'appends from now on; its frames carry the new epoch. Without --epoch the epoch is one more than the greatest ' +
        'the server has seen; a given one must be greater (else FAILED_PRECONDITION, WAL_EPOCH_MISMATCH). Stop the old ' +
        'leader first, or fence it: an Append with expected_epoch set to the new epoch is refused by the old one. ' +
        'On a leader it only starts a new epoch. Needs the admin role.',
    )
    .addOption(new Option('--epoch <n>', 'the epoch to lead in (an external coordinator may supply it, up to 2^48 - 1)').argParser(parseNonNegativeInteger));
  addUnaryClientOptions(command).action(async (options: PromoteOptions) => {
    const response = await withClient(options, (client) =>
      callUnary<PromoteResponse>((metadata, callback) =>
        client.promote(options.epoch === undefined ? {} : { epoch: BigInt(options.epoch) }, metadata, deadlineOptions(options.timeoutMs), callback),
      ),
    );
    if (options.json) printJson({ epoch: Number(response.epoch), start_offset: Number(response.startOffset) });
    else printText(`promoted: leading in epoch ${response.epoch} from offset ${response.startOffset}\n`);
  });
}
