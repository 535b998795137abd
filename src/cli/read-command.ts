import type { Command } from 'commander';
import type { ReadRequest, ReadResponse } from '../gen/wald/v1/read.js';
import { parseNonNegativeInteger, parsePositiveUint32 } from './arg-parsers.js';
import { printJson, printText } from './output.js';
import { formatRecordTable, jsonInteger, jsonOptionalInteger, recordToJson } from './record-view.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** Default `--limit` of `wald read`: the server's own default. */
export const DEFAULT_READ_LIMIT = 100;

interface ReadCommandOptions extends UnaryCommandOptions {
  readonly fromOffset: number;
  readonly limit: number;
  readonly maxBytes?: number;
}

function printRead(response: ReadResponse, json: boolean): void {
  if (json) {
    printJson({
      records: response.records.map(recordToJson),
      next_offset: jsonInteger(response.nextOffset),
      high_watermark: jsonOptionalInteger(response.highWatermark),
      first_offset: jsonInteger(response.firstOffset),
    });
    return;
  }
  const count = response.records.length;
  const table = count === 0 ? '' : formatRecordTable(response.records);
  const highWatermark = response.highWatermark === undefined ? 'none' : response.highWatermark.toString();
  printText(`${table}(${count} record${count === 1 ? '' : 's'}; next offset ${response.nextOffset}; high watermark ${highWatermark})\n`);
}

/** Registers `wald read`: one bounded read of durable records from an offset. */
export function registerReadCommand(program: Command): void {
  const command = program
    .command('read')
    .alias('wal-read') // the name rstmdb-cli scripts call it by
    .summary('read records from an offset')
    .description('Read durable records from an offset, at most --limit records (server maximum 1000) and --max-bytes bytes.')
    .option('--from-offset <n>', 'first offset to read', parseNonNegativeInteger, 0)
    .option('--limit <n>', 'most records to return (1 to 1000)', parsePositiveUint32, DEFAULT_READ_LIMIT)
    .option('--max-bytes <n>', 'most bytes of records to return (default: the server maximum)', parsePositiveUint32);
  addUnaryClientOptions(command).action(async (options: ReadCommandOptions) => {
    const request: ReadRequest = { fromOffset: BigInt(options.fromOffset), limit: options.limit, maxBytes: options.maxBytes ?? 0 };
    const response = await withClient(options, (client) =>
      callUnary<ReadResponse>((metadata, callback) => client.read(request, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printRead(response, options.json);
  });
}
