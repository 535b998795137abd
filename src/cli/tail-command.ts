import { status as Status, type ClientReadableStream } from '@grpc/grpc-js';
import { Option, type Command } from 'commander';
import { isServiceError } from '../client/rpc-error-info.js';
import type { TailWalRequest, TailWalResponse } from '../gen/wald/v1/tail.js';
import type { Record as RecordMessage } from '../gen/wald/v1/record.js';
import { parseNonNegativeInteger, parsePositiveInteger, parsePositiveUint32, parseTimestamp } from './arg-parsers.js';
import { printJson, printText } from './output.js';
import { RECORD_COLUMNS, recordCells, recordToJson } from './record-view.js';
import { toRpcError } from './rpc-error.js';
import { addClientOptions, connectClient, type ClientCommandOptions } from './wal-client.js';

interface TailCommandOptions extends ClientCommandOptions {
  readonly fromOffset?: number;
  readonly fromTimestamp?: number;
  readonly end?: boolean;
  readonly limit?: number;
  readonly maxRecords?: number;
  readonly maxBytes?: number;
}

/**
 * Widths of the leading columns of the streamed table (offset, timestamp, type, key). A tail
 * cannot see its rows in advance, so it pads to fixed widths: offsets up to 8 digits, the 24
 * characters of an ISO timestamp, `checkpoint`, and short keys line up; longer cells push on.
 */
const TAIL_COLUMN_WIDTHS = [8, 24, 10, 16] as const;

function tailLine(cells: readonly string[]): string {
  return cells.map((cell, column) => cell.padEnd(TAIL_COLUMN_WIDTHS[column] ?? 0)).join('  ').trimEnd() + '\n';
}

function startOf(options: TailCommandOptions): TailWalRequest['start'] {
  if (options.fromOffset !== undefined) return { $case: 'fromOffset', value: BigInt(options.fromOffset) };
  if (options.fromTimestamp !== undefined) return { $case: 'fromTimestamp', value: BigInt(options.fromTimestamp) };
  if (options.end === true) return { $case: 'fromEnd', value: true };
  return undefined;
}

function printRecord(record: RecordMessage, json: boolean): void {
  if (json) printJson(recordToJson(record));
  else printText(tailLine(recordCells(record)));
}

/**
 * Reads the stream until it ends, `limit` records are printed, or `stop` is called. The stream is
 * consumed with `for await`, which keeps the client's memory bounded and lets the server see a
 * slow terminal through flow control.
 */
async function follow(call: ClientReadableStream<TailWalResponse>, options: TailCommandOptions, cancel: { requested: boolean }): Promise<void> {
  let printed = 0;
  try {
    for await (const message of call as AsyncIterable<TailWalResponse>) {
      for (const record of message.records) {
        printRecord(record, options.json);
        printed += 1;
        if (options.limit !== undefined && printed >= options.limit) {
          cancel.requested = true;
          call.cancel();
          return;
        }
      }
    }
  } catch (error) {
    if (cancel.requested && isServiceError(error) && error.code === Status.CANCELLED) return;
    throw isServiceError(error) ? toRpcError(error) : error;
  }
}

/** Registers `wald tail`: follow the log live until Ctrl-C. */
export function registerTailCommand(program: Command): void {
  const command = program
    .command('tail')
    .summary('follow the log live')
    .description(
      'Print durable records from a starting point (default: the first retained offset), catching up and then ' +
        'following new appends live until Ctrl-C (exit 0), --limit records, or the server ends the stream (exit 1). ' +
        'Text prints a table row per record; --json prints one JSON object per line. Heartbeats are not printed.',
    )
    .addOption(new Option('--from-offset <n>', 'start at this offset').argParser(parseNonNegativeInteger).conflicts(['fromTimestamp', 'end']))
    .addOption(
      new Option('--from-timestamp <time>', 'start at the first record at or after this time (ms since the epoch, or ISO 8601)')
        .argParser(parseTimestamp)
        .conflicts(['end']),
    )
    .addOption(new Option('--end', 'start at the end: only records appended from now on'))
    .option('--limit <n>', 'stop after this many records (exit 0)', parsePositiveInteger)
    .option('--max-records <n>', 'most records per stream message (default: the server maximum)', parsePositiveUint32)
    .option('--max-bytes <n>', 'most record bytes per stream message (default: the server maximum)', parsePositiveUint32);
  addClientOptions(command).action(async (options: TailCommandOptions) => {
    const request: TailWalRequest = { start: startOf(options), maxRecords: options.maxRecords ?? 0, maxBytes: options.maxBytes ?? 0, frames: false, followerId: '' };
    const client = connectClient(options);
    const call = client.tailWal(request);
    const cancel = { requested: false };
    const stop = (): void => {
      cancel.requested = true;
      call.cancel();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      if (!options.json) printText(tailLine(RECORD_COLUMNS));
      await follow(call, options, cancel);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      client.close();
    }
  });
}
