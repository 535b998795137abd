import type { Command } from 'commander';
import type { CompactResponse, DeleteSegmentsBeforeResponse, KeyCompactionReport } from '../gen/wald/v1/compaction.js';
import { parseNonNegativeInteger, parsePercent } from './arg-parsers.js';
import { printJson, printText } from './output.js';
import { jsonInteger, jsonOptionalInteger } from './record-view.js';
import { recordCountsJson, recordCountsText } from './record-counts-view.js';
import { formatFields } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

interface CompactOptions extends UnaryCommandOptions {
  readonly dryRun?: boolean;
  readonly forceSnapshot?: boolean;
  readonly aggressive?: boolean;
  readonly threshold?: number;
}

/** The server's default `threshold_percent`, for `--help`. */
const DEFAULT_THRESHOLD_PERCENT = 20;

function keyCompactionJson(report: KeyCompactionReport): Record<string, unknown> {
  return {
    segments_considered: report.segmentsConsidered,
    segments_rewritten: report.segmentsRewritten,
    records_considered: jsonInteger(report.recordsConsidered),
    records_dropped: jsonInteger(report.recordsDropped),
    redundancy_percent: report.redundancyPercent,
    before_size_bytes: jsonInteger(report.beforeSizeBytes),
    after_size_bytes: jsonInteger(report.afterSizeBytes),
    freed_bytes: jsonInteger(report.freedBytes),
    reduction_percent: report.reductionPercent,
    duration_ms: jsonInteger(report.durationMs),
  };
}

function printCompaction(response: CompactResponse, json: boolean): void {
  if (json) {
    printJson({
      dry_run: response.dryRun,
      snapshots_created: response.snapshotsCreated,
      segments_deleted: response.segmentsDeleted,
      bytes_reclaimed: jsonInteger(response.bytesReclaimed),
      snapshots_deleted: response.snapshotsDeleted,
      total_snapshots: response.totalSnapshots,
      wal_segments: response.walSegments,
      snapshot_id: response.snapshotId,
      snapshot_offset: jsonInteger(response.snapshotOffset),
      checkpoint_offset: jsonOptionalInteger(response.checkpointOffset),
      first_offset: jsonInteger(response.firstOffset),
      redundancy_ratio: response.redundancyRatio ?? null,
      record_counts: response.recordCounts === undefined ? null : recordCountsJson(response.recordCounts),
      duration_ms: jsonInteger(response.durationMs),
      lease_held_segments: response.leaseHeldSegments,
      lease_held_bytes: jsonInteger(response.leaseHeldBytes),
      lease_holders: response.leaseHolders,
      ...(response.keyCompaction === undefined ? {} : { key_compaction: keyCompactionJson(response.keyCompaction) }),
    });
    return;
  }
  const would = response.dryRun ? ' (would be)' : '';
  const fields: [string, string][] = [
    ['dry run', response.dryRun ? 'yes: nothing was changed' : 'no'],
    [`snapshots created${would}`, String(response.snapshotsCreated)],
    ['snapshot', response.snapshotId === '' ? `a new one at offset ${response.snapshotOffset}` : `${response.snapshotId} (offset ${response.snapshotOffset})`],
    ['checkpoint offset', response.checkpointOffset === undefined ? 'none' : response.checkpointOffset.toString()],
    [`segments deleted${would}`, String(response.segmentsDeleted)],
    [`bytes reclaimed${would}`, response.bytesReclaimed.toString()],
    [`snapshots deleted${would}`, String(response.snapshotsDeleted)],
    ['total snapshots', String(response.totalSnapshots)],
    ['wal segments', String(response.walSegments)],
    ['first offset', response.firstOffset.toString()],
  ];
  if (response.leaseHeldSegments > 0) {
    fields.push([
      `kept for followers${would}`,
      `${response.leaseHeldSegments} segments, ${response.leaseHeldBytes} bytes (retention leases of ${response.leaseHolders.join(', ')})`,
    ]);
  }
  if (response.redundancyRatio !== undefined) fields.push(['redundancy', `${(response.redundancyRatio * 100).toFixed(1)}% of the retained records`]);
  if (response.recordCounts !== undefined) fields.push(['records by type', recordCountsText(response.recordCounts)]);
  const keys = response.keyCompaction;
  if (keys !== undefined) {
    fields.push(
      [`key compaction: segments rewritten${would}`, `${keys.segmentsRewritten} of ${keys.segmentsConsidered} sealed`],
      [`key compaction: records dropped${would}`, `${keys.recordsDropped} of ${keys.recordsConsidered} (${keys.redundancyPercent.toFixed(1)}% redundant)`],
      [`key compaction: bytes${would}`, `${keys.beforeSizeBytes} -> ${keys.afterSizeBytes}, ${keys.freedBytes} freed (${keys.reductionPercent.toFixed(1)}%)`],
    );
  }
  fields.push(['duration', `${response.durationMs} ms`]);
  printText(formatFields(fields));
}

/** Registers `wald compact`: reclaim disk below a snapshot (or report what would be reclaimed). */
export function registerCompactCommand(program: Command): void {
  const command = program
    .command('compact')
    .summary('delete the log below a snapshot to reclaim disk')
    .description(
      'Snapshot the key-value view at the high watermark (or reuse the newest snapshot when it is still there and ' +
        'verifies), append a checkpoint record naming it, delete the sealed segments below it that retention ' +
        '(compaction.retention_ms, compaction.max_log_bytes) does not keep, and delete old snapshots beyond ' +
        'compaction.keep_snapshots. Segments followers still need are kept within replication.lease_max_bytes and ' +
        'replication.lease_max_age_ms (reported as kept for followers). With --dry-run, report what would be reclaimed and the share of retained ' +
        'records that are redundant, changing nothing.',
    )
    .option('--dry-run', 'report what would be reclaimed; change nothing')
    .option('--force-snapshot', 'write a new full snapshot even when the newest one could be reused')
    .option('--aggressive', 'then rewrite the sealed segments kept, keeping only the latest record per key (offsets stay; reads skip the gaps)')
    .option('--threshold <percent>', `with --aggressive: rewrite only segments at least this redundant (0-100; default ${DEFAULT_THRESHOLD_PERCENT})`, parsePercent);
  addUnaryClientOptions(command).action(async (options: CompactOptions) => {
    const aggressive = options.aggressive === true;
    const request = {
      forceSnapshot: options.forceSnapshot === true,
      dryRun: options.dryRun === true,
      aggressive,
      // Sent as given: the server refuses a threshold without --aggressive (INVALID_ARGUMENT, exit 1).
      thresholdPercent: options.threshold,
    };
    const response = await withClient(options, (client) =>
      callUnary<CompactResponse>((metadata, callback) => client.compact(request, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printCompaction(response, options.json);
  });
}

interface DeleteSegmentsOptions extends UnaryCommandOptions {
  readonly force?: boolean;
}

/** Registers `wald delete-segments-before OFFSET`: delete the sealed segments below an offset that a snapshot covers. */
export function registerDeleteSegmentsBeforeCommand(program: Command): void {
  const command = program
    .command('delete-segments-before')
    .summary('delete the sealed segments below an offset')
    .description(
      'Delete the sealed segments whose records all lie below OFFSET (no retention applies). Refused with ' +
        'FAILED_PRECONDITION (WAL_NOT_COVERED) when no snapshot holds those records, unless --force: the server ' +
        'then cannot rebuild its key-value view at its next start until such a snapshot is restored.',
    )
    .argument('<offset>', 'segments holding only records below this offset are deleted', parseNonNegativeInteger)
    .option('--force', 'delete even what no snapshot covers');
  addUnaryClientOptions(command).action(async (offset: number, options: DeleteSegmentsOptions) => {
    const request = { offset: BigInt(offset), force: options.force === true };
    const response = await withClient(options, (client) =>
      callUnary<DeleteSegmentsBeforeResponse>((metadata, callback) =>
        client.deleteSegmentsBefore(request, metadata, deadlineOptions(options.timeoutMs), callback),
      ),
    );
    if (options.json) {
      printJson({
        segments_deleted: response.segmentsDeleted,
        bytes_reclaimed: jsonInteger(response.bytesReclaimed),
        first_offset: jsonInteger(response.firstOffset),
      });
      return;
    }
    const count = response.segmentsDeleted;
    printText(`deleted ${count} segment${count === 1 ? '' : 's'} (${response.bytesReclaimed} bytes); the log starts at offset ${response.firstOffset}\n`);
  });
}
