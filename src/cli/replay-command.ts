import { Option, type Command } from 'commander';
import type { ReplayReport } from '../offline/log-replay.js';
import { DEFAULT_MAX_STATE_BYTES } from '../state/key-state.js';
import type { PointInTime } from '../state/point-in-time.js';
import { DEFAULT_MAX_ENDED_TXNS } from '../state/txn-table.js';
import { parseNonNegativeInteger, parsePositiveInteger, parseTimestamp } from './arg-parsers.js';
import { CommandFailure } from './exit-codes.js';
import { describeFault, faultToJson } from './fault-view.js';
import { addOfflineOptions, addSnapshotDirOption, withOfflineDir, type OfflineCommandOptions } from './offline-options.js';
import { printJson, printText } from './output.js';
import { progressBar } from './progress-bar.js';
import { formatFields } from './table.js';

interface ReplayCommandOptions extends OfflineCommandOptions {
  readonly snapshotDir: string;
  readonly from?: number;
  readonly to?: number;
  readonly fromOffset?: number;
  readonly toOffset?: number;
  readonly verify: boolean;
  readonly maxStateBytes: number;
  readonly txnMaxEnded: number;
}

function pointOf(timestampMs: number | undefined, offset: number | undefined): PointInTime | undefined {
  if (offset !== undefined) return { offset };
  if (timestampMs !== undefined) return { timestampMs };
  return undefined;
}

/** The JSON document of `wald replay --json` (snake_case, as every `--json`). */
export function replayToJson(dataDir: string, report: ReplayReport): Record<string, unknown> {
  return {
    data_dir: dataDir,
    segments_replayed: report.segmentsReplayed,
    records_replayed: report.recordsReplayed,
    keys_affected: report.keysAffected,
    duration_ms: Math.round(report.durationMs),
    from_offset: report.fromOffset,
    to_offset: report.toOffset,
    records_before_from: report.recordsBeforeFrom,
    absent_offsets: report.absentOffsets,
    snapshot: report.snapshot === undefined ? null : { id: report.snapshot.id, type: report.snapshot.type, wal_offset: report.snapshot.walOffset, path: report.snapshot.path },
    skipped_snapshots: report.skippedSnapshots.map((problem) => ({ file: problem.file, reason: problem.reason })),
    key_count: report.keyCount,
    memory_bytes: report.memoryBytes,
    verification:
      report.verification === undefined
        ? null
        : {
            ok: report.verification.faults.length === 0,
            segments_checked: report.verification.segmentsChecked,
            snapshots_verified: report.verification.snapshotsVerified,
            faults: report.verification.faults.map(faultToJson),
          },
  };
}

function replayText(dataDir: string, report: ReplayReport): string {
  const fields: [string, string][] = [
    ['data dir', dataDir],
    ['segments replayed', String(report.segmentsReplayed)],
    ['records replayed', `${report.recordsReplayed} (offsets ${report.fromOffset} up to ${report.toOffset})`],
    ['keys affected', String(report.keysAffected)],
    ['duration', `${Math.round(report.durationMs)} ms`],
    ['built from', report.snapshot === undefined ? 'the log from offset 0' : `snapshot ${report.snapshot.id} (offset ${report.snapshot.walOffset}) + ${report.recordsBeforeFrom} records`],
    ['keys', `${report.keyCount} (about ${report.memoryBytes} bytes)`],
  ];
  if (report.absentOffsets > 0) fields.push(['absent offsets', `${report.absentOffsets} (removed by key compaction)`]);
  if (report.verification !== undefined) fields.push(['verified', `${report.verification.segmentsChecked} segments, ${report.verification.snapshotsVerified} snapshots, ${report.verification.faults.length} faults`]);
  const lines = [
    ...(report.verification?.faults ?? []).map((fault) => `fault: ${describeFault(fault)}`),
    ...report.skippedSnapshots.map((problem) => `note: snapshot ${problem.file} not used: ${problem.reason}`),
  ];
  return formatFields(fields) + (lines.length === 0 ? '' : lines.join('\n') + '\n');
}

/** Registers `wald replay`: the log replayed offline into a fresh state, with figures. */
export function registerReplayCommand(program: Command): void {
  const command = program
    .command('replay')
    .summary('replay the log into a fresh key-value state and report what it did (offline)')
    .description(
      'Rebuild the key-value state offline: the state at --from (default: the earliest state the snapshots and the log ' +
        'allow) is built from the newest snapshot at or below it that verifies plus the log, then the records from --from ' +
        'up to --to (default: the end of the log) are replayed and counted. Writes nothing: two runs give the same ' +
        'figures (but the duration). Times are ms since the epoch or RFC 3339 (a point in time holds every record stamped ' +
        'at or before it). --verify first checks every frame and every snapshot chain, as wald verify, and replays ' +
        'nothing on a fault (exit 1). A point no snapshot and retained log reach exits 1 with ' +
        'WAL_POINT_IN_TIME_UNAVAILABLE, naming the earliest state available. Takes the directory lock.',
    )
    .addOption(new Option('--from <time>', 'count the records stamped after this instant (the state at it is built first)').argParser(parseTimestamp).conflicts('fromOffset'))
    .addOption(new Option('--from-offset <n>', 'count the records from this offset on (the state below it is built first)').argParser(parseNonNegativeInteger))
    .addOption(new Option('--to <time>', 'replay up to this instant (every record stamped at or before it)').argParser(parseTimestamp).conflicts('toOffset'))
    .addOption(new Option('--to-offset <n>', 'replay the records below this offset').argParser(parseNonNegativeInteger))
    .option('--verify', 'first check every frame of the log and every snapshot chain; replay nothing on a fault', false)
    .addOption(new Option('--max-state-bytes <n>', 'cap on the state\'s memory estimate (the server\'s max_state_bytes)').argParser(parsePositiveInteger).default(DEFAULT_MAX_STATE_BYTES))
    .addOption(
      new Option('--txn-max-ended <n>', 'ended transactions remembered, past which an id may be prepared again (the server\'s txn_max_ended)')
        .argParser(parseNonNegativeInteger)
        .default(DEFAULT_MAX_ENDED_TXNS),
    );
  addSnapshotDirOption(addOfflineOptions(command)).action(async (options: ReplayCommandOptions) => {
    const { replayDataDir } = await import('../offline/log-replay.js');
    const report = await withOfflineDir(options, false, false, async (dir) => {
      const bar = progressBar('verify', options.json || !options.verify);
      try {
        return await replayDataDir(dir.storage, dir.dir, {
          snapshotDir: options.snapshotDir,
          from: pointOf(options.from, options.fromOffset),
          to: pointOf(options.to, options.toOffset),
          verify: options.verify,
          maxStateBytes: options.maxStateBytes,
          txnMaxEnded: options.txnMaxEnded,
          progress: bar,
        });
      } finally {
        bar.stop();
      }
    });
    if (options.json) printJson(replayToJson(options.dataDir, report));
    else printText(replayText(options.dataDir, report));
    const faults = report.verification?.faults.length ?? 0;
    if (faults > 0) throw new CommandFailure(`${faults} fault${faults === 1 ? '' : 's'} in ${options.dataDir}: nothing replayed`);
  });
}

