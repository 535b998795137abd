import type { Command } from 'commander';
import type { SyncResponse } from '../gen/wald/v1/stats.js';
import { printJson, printText } from './output.js';
import { jsonOptionalInteger } from './record-view.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** Registers `wald sync`: force an fdatasync and show the durable offset. */
export function registerSyncCommand(program: Command): void {
  const command = program
    .command('sync')
    .summary('make every written record durable now')
    .description('Force an fdatasync on the server and show the high watermark (the last durable offset) afterwards.');
  addUnaryClientOptions(command).action(async (options: UnaryCommandOptions) => {
    const response = await withClient(options, (client) =>
      callUnary<SyncResponse>((metadata, callback) => client.sync({}, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    if (options.json) printJson({ high_watermark: jsonOptionalInteger(response.highWatermark) });
    else printText(response.highWatermark === undefined ? 'synced; the log holds no record\n' : `synced; high watermark ${response.highWatermark}\n`);
  });
}
