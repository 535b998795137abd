import { Option, type Command } from 'commander';
import { RECORD_TYPE_NAMES, RECORD_TYPES, type RecordType } from '../codec/record.js';
import type { AppendRequest, AppendResponse } from '../gen/wald/v1/append.js';
import type { AppendRecord } from '../gen/wald/v1/record.js';
import { WIRE_RECORD_TYPES } from '../wire/wire-record-type.js';
import { collectHeader, parseNonNegativeInteger } from './arg-parsers.js';
import { UsageError } from './exit-codes.js';
import { printJson, printText } from './output.js';
import { isoTime, jsonInteger } from './record-view.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/**
 * Most bytes read from stdin by `append --stdin`. Far above the server's default batch limit
 * (4 MiB), so the server's own limit is what a user meets; bounded so that piping an endless
 * stream in fails instead of exhausting memory.
 */
export const MAX_STDIN_BYTES = 64 * 1024 * 1024;

/** The record types a client may append (`--type`): every type but the server's own markers. */
const CLIENT_RECORD_TYPES = RECORD_TYPE_NAMES.filter((name) => !RECORD_TYPES[name].isServerOnly);

interface AppendCommandOptions extends UnaryCommandOptions {
  readonly key?: string;
  readonly header?: readonly (readonly [string, string])[];
  readonly type: RecordType;
  readonly stdin: boolean;
  readonly expectedOffset?: number;
  readonly producerId?: string;
  readonly sequence?: number;
  readonly expectedEpoch?: number;
  readonly minReplicas?: number;
  readonly sync: boolean;
}

/** Splits stdin into records: one per line (`\n` or `\r\n`); a final newline ends the last line. */
export function splitLines(input: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let newline = input.indexOf(0x0a); newline >= 0; newline = input.indexOf(0x0a, start)) {
    const end = newline > start && input[newline - 1] === 0x0d ? newline - 1 : newline;
    lines.push(input.subarray(start, end));
    start = newline + 1;
  }
  if (start < input.length) lines.push(input.subarray(start));
  return lines;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += buffer.length;
    if (total > MAX_STDIN_BYTES) throw new UsageError(`stdin holds more than ${MAX_STDIN_BYTES} bytes; split the input into several appends`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function recordValues(values: readonly string[], options: AppendCommandOptions): Promise<Buffer[]> {
  if (options.stdin && values.length > 0) throw new UsageError('give VALUE arguments or --stdin, not both');
  if (!options.stdin && values.length === 0) throw new UsageError('nothing to append: give one or more VALUE arguments, or --stdin');
  if (!options.stdin) return values.map((value) => Buffer.from(value, 'utf8'));
  const lines = splitLines(await readStdin());
  if (lines.length === 0) throw new UsageError('nothing to append: stdin is empty');
  return lines;
}

function checkOptions(options: AppendCommandOptions): void {
  if (options.sequence !== undefined && options.producerId === undefined) throw new UsageError('--sequence needs --producer-id');
  if (RECORD_TYPES[options.type].isKeyRequired && options.key === undefined) throw new UsageError(`--type ${options.type} needs --key`);
}

function buildRequest(values: readonly Buffer[], options: AppendCommandOptions): AppendRequest {
  const headers = Object.fromEntries((options.header ?? []).map(([name, value]) => [name, Buffer.from(value, 'utf8')]));
  const key = options.key === undefined ? undefined : Buffer.from(options.key, 'utf8');
  const type = WIRE_RECORD_TYPES[options.type];
  const records: AppendRecord[] = values.map((value) => ({ key, value, headers, type }));
  return {
    records,
    expectedOffset: options.expectedOffset === undefined ? undefined : BigInt(options.expectedOffset),
    producerId: options.producerId ?? '',
    expectedEpoch: options.expectedEpoch === undefined ? undefined : BigInt(options.expectedEpoch),
    minReplicas: options.minReplicas ?? 0,
    sequence: BigInt(options.sequence ?? 0),
    sync: options.sync,
  };
}

function printAppended(response: AppendResponse, count: number, json: boolean): void {
  if (json) {
    printJson({
      first_offset: jsonInteger(response.firstOffset),
      last_offset: jsonInteger(response.lastOffset),
      timestamp: jsonInteger(response.timestamp),
      record_count: count,
      duplicate: response.duplicate,
    });
    return;
  }
  const offsets = response.firstOffset === response.lastOffset ? `offset ${response.firstOffset}` : `offsets ${response.firstOffset}-${response.lastOffset}`;
  const duplicate = response.duplicate ? ' (duplicate: already written by this producer sequence; nothing new written)' : '';
  printText(`appended ${count} record${count === 1 ? '' : 's'} at ${offsets}, timestamp ${isoTime(response.timestamp)}${duplicate}\n`);
}

/** Registers `wald append`: one atomic batch of records from arguments or stdin. */
export function registerAppendCommand(program: Command): void {
  const command = program
    .command('append')
    .summary('append records as one atomic batch')
    .description(
      'Append records as one atomic batch: each VALUE is one record (UTF-8), or with --stdin each line of stdin ' +
        'is one record (raw bytes; "\\n" or "\\r\\n" ends a line). --key and --header apply to every record.',
    )
    .argument('[value...]', 'record values, one record each')
    .option('--key <key>', 'key of every record (UTF-8)')
    .option('--header <name=value>', 'header of every record; repeat for more', collectHeader)
    .addOption(new Option('--type <type>', 'record type').choices(CLIENT_RECORD_TYPES).default('put'))
    .option('--stdin', 'read records from stdin, one per line', false)
    .option('--expected-offset <n>', 'append only if the batch would start at this offset (else ABORTED)', parseNonNegativeInteger)
    .option('--producer-id <id>', 'producer id for an idempotent append (with --sequence)')
    .option('--sequence <n>', 'sequence number of this append for --producer-id', parseNonNegativeInteger)
    .option('--expected-epoch <n>', "append only if the leader's epoch is this one (a fencing token; else FAILED_PRECONDITION WAL_EPOCH_MISMATCH)", parseNonNegativeInteger)
    .option('--min-replicas <n>', 'acknowledge only once this many followers hold the records durably (else DEADLINE_EXCEEDED WAL_REPLICAS_TIMEOUT)', parseNonNegativeInteger)
    .option('--sync', 'fsync before acknowledging, whatever the server policy', false);
  addUnaryClientOptions(command).action(async (values: string[], options: AppendCommandOptions) => {
    checkOptions(options);
    const records = await recordValues(values, options);
    const request = buildRequest(records, options);
    const response = await withClient(options, (client) =>
      callUnary<AppendResponse>((metadata, callback) => client.append(request, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printAppended(response, records.length, options.json);
  });
}
