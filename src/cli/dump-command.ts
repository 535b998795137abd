import type { Command } from 'commander';
import type { WalRecord } from '../codec/record.js';
import type { DumpedFrame } from '../offline/log-dump.js';
import type { LogFault } from '../offline/log-fault.js';
import { parseNonNegativeInteger, parsePositiveInteger } from './arg-parsers.js';
import { CommandFailure } from './exit-codes.js';
import { describeFault, faultToJson } from './fault-view.js';
import { addOfflineOptions, addReadOnlyOption, withOfflineDir, type OfflineCommandOptions } from './offline-options.js';
import { BufferedOutput } from './buffered-output.js';
import { printText } from './output.js';
import { progressBar } from './progress-bar.js';
import { bytesAsText, jsonBytes } from './record-view.js';

interface DumpCommandOptions extends OfflineCommandOptions {
  readonly readOnly: boolean;
  readonly fromOffset: number;
  readonly limit?: number;
  readonly frames: boolean;
}

/** Bytes of a value shown in the text preview. */
const PREVIEW_BYTES = 32;

/**
 * The start of a value for the text table: its first 32 bytes as text when they read as text
 * (UTF-8 without control characters, the rules of `wald read`), else as `hex:` and their hex,
 * with `...` when the value is longer. The exact bytes are in `--json`.
 */
export function valuePreview(value: Uint8Array): string {
  const head = value.subarray(0, PREVIEW_BYTES);
  const more = value.length > PREVIEW_BYTES ? '...' : '';
  const text = bytesAsText(head);
  // A cut through a multi-byte character does not read as UTF-8: hex then, as for binary values.
  return text.startsWith('base64:') ? `hex:${Buffer.from(head).toString('hex')}${more}` : `${text}${more}`;
}

const RECORD_COLUMNS = ['OFFSET', 'TIMESTAMP', 'TYPE', 'KEY', 'VALUE_BYTES', 'HEADERS', 'VALUE'] as const;
const RECORD_WIDTHS = [8, 24, 10, 16, 11, 12] as const;
const FRAME_COLUMNS = ['SEGMENT', 'POSITION', 'LENGTH', 'CRC', 'TYPE', 'FLAGS', 'COUNT', 'BASE_OFFSET', 'TIMESTAMP', 'EPOCH', 'SYNC_LAG', 'PRODUCER'] as const;
const FRAME_WIDTHS = [24, 10, 8, 10, 4, 5, 6, 11, 24, 5, 8] as const;

/** One line of a table streamed row by row: leading columns padded to fixed widths. */
function line(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd() + '\n';
}

let lastTimestampMs = Number.NaN;
let lastIsoTime = '';

/** The ISO 8601 form of a timestamp, remembered for the next call: the records of a frame share one. */
function isoTime(timestampMs: number): string {
  if (timestampMs !== lastTimestampMs) {
    lastTimestampMs = timestampMs;
    lastIsoTime = Number.isFinite(timestampMs) && timestampMs <= 8.64e15 ? new Date(timestampMs).toISOString() : String(timestampMs);
  }
  return lastIsoTime;
}

function recordCells(record: WalRecord): string[] {
  const headers = Object.entries(record.headers).map(([name, value]) => `${name}=${bytesAsText(value)}`).join(',');
  return [String(record.offset), isoTime(record.timestamp), record.type, bytesAsText(record.key), String(record.value.length), headers || '-', valuePreview(record.value)];
}

/** The JSON line of a record: the shape of `wald read --json`'s records, plus its size and place. */
function recordToJson(record: WalRecord, frame: DumpedFrame): Record<string, unknown> {
  const headers: Record<string, string> = {};
  let headersBase64: Record<string, string> | undefined;
  for (const [name, bytes] of Object.entries(record.headers)) {
    const field = jsonBytes('value', bytes);
    if (field['value'] !== undefined) headers[name] = field['value'];
    else (headersBase64 ??= {})[name] = bytes.toString('base64');
  }
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    time: isoTime(record.timestamp),
    type: record.type,
    ...(record.key === undefined ? { key: null } : jsonBytes('key', record.key)),
    ...jsonBytes('value', record.value),
    headers,
    ...(headersBase64 === undefined ? {} : { headers_base64: headersBase64 }),
    value_size_bytes: record.value.length,
    segment: frame.segment,
    position: frame.position,
  };
}

function frameCells(frame: DumpedFrame): string[] {
  const producer = frame.producer === undefined ? '-' : `${frame.producer.producerId}#${frame.producer.sequence}`;
  return [
    frame.segment,
    String(frame.position),
    String(frame.length),
    `0x${frame.crc.toString(16).padStart(8, '0')}`,
    String(frame.type),
    `0x${frame.flags.toString(16).padStart(2, '0')}`,
    String(frame.recordCount),
    String(frame.baseOffset),
    isoTime(frame.timestamp),
    String(frame.leaderEpoch),
    String(frame.syncLag),
    producer,
  ];
}

function frameToJson(frame: DumpedFrame): Record<string, unknown> {
  return {
    segment: frame.segment,
    position: frame.position,
    length: frame.length,
    crc: frame.crc,
    type: frame.type,
    flags: frame.flags,
    record_count: frame.recordCount,
    base_offset: frame.baseOffset,
    timestamp: frame.timestamp,
    time: isoTime(frame.timestamp),
    leader_epoch: frame.leaderEpoch,
    sync_lag: frame.syncLag,
    producer_id: frame.producer?.producerId ?? null,
    sequence: frame.producer?.sequence ?? null,
  };
}

function printFault(fault: LogFault, json: boolean, out: BufferedOutput): void {
  // What came before the damage first, so that a terminal shows the fault where it was met.
  out.flush();
  process.stderr.write(json ? `${JSON.stringify({ fault: faultToJson(fault) })}\n` : `wald: fault: ${describeFault(fault)}\n`);
}

/** Registers `wald dump`: the records (or frames) of a data directory, decoded offline. */
export function registerDumpCommand(program: Command): void {
  const command = program
    .command('dump')
    .summary('decode the records or frames of a data directory (offline)')
    .description(
      'Decode the log of a data directory offline, like Kafka\'s DumpLogSegments: its records from --from-offset ' +
        '(or with --frames the frame headers), at most --limit. Damage is reported on stderr and the dump goes on at ' +
        'the next valid frame; exits 1 if there was any. --json prints one JSON object per line. Takes the directory ' +
        'lock (refused while a server holds it) unless --read-only.',
    )
    .option('--from-offset <n>', 'first offset to show', parseNonNegativeInteger, 0)
    .option('--limit <n>', 'most records (or frames) to show (default: all)', parsePositiveInteger)
    .option('--frames', 'show the frames with their headers instead of the records', false);
  addReadOnlyOption(addOfflineOptions(command)).action(async (options: DumpCommandOptions) => {
    const { dumpLog } = await import('../offline/log-dump.js');
    const summary = await withOfflineDir(options, options.readOnly, true, async (dir) => {
      // Records printed to the terminal would tear the bar: it shows only while they go elsewhere.
      const bar = progressBar('dump', options.json || process.stdout.isTTY === true);
      const out = new BufferedOutput();
      let isHeaderPrinted = false;
      const header = (columns: readonly string[], widths: readonly number[]): void => {
        if (isHeaderPrinted || options.json) return;
        isHeaderPrinted = true;
        out.write(line(columns, widths));
      };
      try {
        return await dumpLog(dir.storage, dir.dir, {
          fromOffset: options.fromOffset,
          limit: options.limit ?? Number.POSITIVE_INFINITY,
          progress: bar,
          onFault: (fault) => printFault(fault, options.json, out),
          onNote: (note) => process.stderr.write(options.json ? `${JSON.stringify({ note })}\n` : `wald: note: ${note}\n`),
          ...(options.frames
            ? {
                onFrame: (frame: DumpedFrame) => {
                  header(FRAME_COLUMNS, FRAME_WIDTHS);
                  out.write(options.json ? `${JSON.stringify(frameToJson(frame))}\n` : line(frameCells(frame), FRAME_WIDTHS));
                },
              }
            : {
                onRecord: (record: WalRecord, frame: DumpedFrame) => {
                  header(RECORD_COLUMNS, RECORD_WIDTHS);
                  out.write(options.json ? `${JSON.stringify(recordToJson(record, frame))}\n` : line(recordCells(record), RECORD_WIDTHS));
                },
              }),
        });
      } finally {
        out.flush();
        bar.stop();
      }
    });
    if (!options.json) {
      const what = options.frames ? `${summary.frames} frame${summary.frames === 1 ? '' : 's'}` : `${summary.records} record${summary.records === 1 ? '' : 's'}`;
      printText(`(${what}${summary.faults > 0 ? `; ${summary.faults} fault${summary.faults === 1 ? '' : 's'}, see stderr` : ''})\n`);
    }
    if (summary.faults > 0) throw new CommandFailure(`${summary.faults} fault${summary.faults === 1 ? '' : 's'} met in ${options.dataDir} (run wald verify for the whole report)`);
  });
}
