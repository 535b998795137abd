import type { Command } from 'commander';
import type { FlushAllResponse } from '../gen/wald/v1/state.js';
import { printJson, printText } from './output.js';
import { jsonInteger } from './record-view.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** Registers `wald flush-all`: remove every key of the key-value view. */
export function registerFlushAllCommand(program: Command): void {
  const command = program
    .command('flush-all')
    .summary('remove every key of the key-value view')
    .description(
      'Remove every key of the key-value view: the server appends one flush_all record (the log keeps every ' +
        'record before it) and answers with the number of keys removed. Refused with FAILED_PRECONDITION ' +
        '(WAL_FLUSH_ALL_DISABLED) unless the server runs with allow_flush_all.',
    );
  addUnaryClientOptions(command).action(async (options: UnaryCommandOptions) => {
    const response = await withClient(options, (client) =>
      callUnary<FlushAllResponse>((metadata, callback) => client.flushAll({}, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    if (options.json) {
      printJson({ keys_removed: jsonInteger(response.keysRemoved), offset: jsonInteger(response.offset) });
      return;
    }
    const count = response.keysRemoved;
    printText(`removed ${count} key${count === 1n ? '' : 's'} (flush_all record at offset ${response.offset})\n`);
  });
}
