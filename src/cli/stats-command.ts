import type { Command } from 'commander';
import { WriteState, type GetStatsResponse } from '../gen/wald/v1/stats.js';
import { followerToJson, followersText } from './followers-command.js';
import { StorageKind } from '../gen/wald/v1/storage.js';
import { printJson, printText } from './output.js';
import { recordCountsJson, recordCountsText } from './record-counts-view.js';
import { jsonInteger, jsonOptionalInteger } from './record-view.js';
import { formatFields } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

function writeStateName(state: WriteState): string {
  switch (state) {
    case WriteState.WRITE_STATE_WRITABLE:
      return 'writable';
    case WriteState.WRITE_STATE_DISK_FULL:
      return 'disk-full';
    case WriteState.WRITE_STATE_READ_ONLY:
      return 'read-only';
    default:
      return `unknown-${String(state)}`;
  }
}

function storageName(kind: StorageKind): string {
  switch (kind) {
    case StorageKind.STORAGE_KIND_DISK:
      return 'disk';
    case StorageKind.STORAGE_KIND_MEMORY:
      return 'memory';
    case StorageKind.STORAGE_KIND_OTHER:
      return 'other';
    default:
      return `unknown-${String(kind)}`;
  }
}

const optionalText = (value: bigint | undefined): string => (value === undefined ? 'none' : value.toString());

function printStats(stats: GetStatsResponse, json: boolean): void {
  const io = stats.ioStats;
  if (json) {
    printJson({
      entry_count: jsonInteger(stats.entryCount),
      segment_count: jsonInteger(stats.segmentCount),
      total_size_bytes: jsonInteger(stats.totalSizeBytes),
      first_offset: jsonInteger(stats.firstOffset),
      latest_offset: jsonOptionalInteger(stats.latestOffset),
      high_watermark: jsonOptionalInteger(stats.highWatermark),
      next_offset: jsonInteger(stats.nextOffset),
      tail_stream_count: stats.tailStreamCount,
      tail_queue_bytes: jsonInteger(stats.tailQueueBytes),
      write_state: writeStateName(stats.writeState),
      key_count: jsonInteger(stats.keyCount),
      state_memory_bytes: jsonInteger(stats.stateMemoryBytes),
      snapshot_count: stats.snapshotCount,
      last_snapshot_id: stats.lastSnapshotId,
      last_snapshot_offset: jsonOptionalInteger(stats.lastSnapshotOffset),
      reclaimable_bytes: jsonInteger(stats.reclaimableBytes),
      in_doubt_transaction_count: jsonInteger(stats.inDoubtTransactionCount),
      oldest_in_doubt_age_ms: jsonOptionalInteger(stats.oldestInDoubtAgeMs),
      record_counts: stats.recordCounts === undefined ? null : recordCountsJson(stats.recordCounts),
      redundancy_ratio: stats.redundancyRatio ?? null,
      record_counts_scanned_ms: jsonInteger(stats.recordCountsScannedMs),
      storage: storageName(stats.storage),
      storage_memory_bytes: jsonInteger(stats.storageMemoryBytes),
      io_stats: {
        bytes_written: jsonInteger(io?.bytesWritten ?? 0n),
        bytes_read: jsonInteger(io?.bytesRead ?? 0n),
        writes: jsonInteger(io?.writes ?? 0n),
        reads: jsonInteger(io?.reads ?? 0n),
        fsyncs: jsonInteger(io?.fsyncs ?? 0n),
      },
      followers: stats.followers.map(followerToJson),
      leader_address: stats.leaderAddress,
      leader_high_watermark: jsonOptionalInteger(stats.leaderHighWatermark),
      replication_lag_records: jsonInteger(stats.replicationLagRecords),
      replication_lag_ms: jsonInteger(stats.replicationLagMs),
    });
    return;
  }
  printText(
    formatFields([
      ['entries', stats.entryCount.toString()],
      ['segments', stats.segmentCount.toString()],
      ['size on disk', `${stats.totalSizeBytes} bytes`],
      ['first offset', stats.firstOffset.toString()],
      ['latest offset', optionalText(stats.latestOffset)],
      ['high watermark', optionalText(stats.highWatermark)],
      ['next offset', stats.nextOffset.toString()],
      ['tail streams', String(stats.tailStreamCount)],
      ['tail queue', `${stats.tailQueueBytes} bytes`],
      ['write state', writeStateName(stats.writeState)],
      ['keys', stats.keyCount.toString()],
      ['state memory', `${stats.stateMemoryBytes} bytes`],
      ['snapshots', String(stats.snapshotCount)],
      ['last snapshot', stats.lastSnapshotId === '' ? 'none' : `${stats.lastSnapshotId} (offset ${optionalText(stats.lastSnapshotOffset)})`],
      ['reclaimable', `${stats.reclaimableBytes} bytes`],
      ['in-doubt transactions', stats.oldestInDoubtAgeMs === undefined ? '0' : `${stats.inDoubtTransactionCount} (oldest ${stats.oldestInDoubtAgeMs} ms)`],
      ['records by type', stats.recordCounts === undefined ? 'not counted yet (wald compact --dry-run counts them)' : `${recordCountsText(stats.recordCounts)} (at the last dry run)`],
      ['redundancy', stats.redundancyRatio === undefined ? '-' : `${(stats.redundancyRatio * 100).toFixed(1)}% (at the last dry run)`],
      ['storage', stats.storage === StorageKind.STORAGE_KIND_MEMORY ? `memory (${stats.storageMemoryBytes} bytes held; gone when the server exits)` : storageName(stats.storage)],
      ['bytes written', (io?.bytesWritten ?? 0n).toString()],
      ['bytes read', (io?.bytesRead ?? 0n).toString()],
      ['writes', (io?.writes ?? 0n).toString()],
      ['reads', (io?.reads ?? 0n).toString()],
      ['fsyncs', (io?.fsyncs ?? 0n).toString()],
      ['followers', String(stats.followers.length)],
      ...(stats.leaderAddress === ''
        ? []
        : ([
            ['leader', stats.leaderAddress],
            ['leader high watermark', optionalText(stats.leaderHighWatermark)],
            ['replication lag', `${stats.replicationLagRecords} records, ${stats.replicationLagMs} ms`],
          ] as [string, string][])),
    ]) + (stats.followers.length === 0 ? '' : `\n${followersText(stats.followers)}`),
  );
}

/** Registers `wald stats`: a point-in-time summary of the log. */
export function registerStatsCommand(program: Command): void {
  const command = program
    .command('stats')
    .alias('wal-stats') // the name rstmdb-cli scripts call it by
    .summary('show a summary of the log')
    .description(
      'Show record and segment counts, bytes on disk, offsets, I/O counters, open tails and their queued bytes, ' +
        'the write state, the key-value view: keys, memory estimate, snapshots and the newest one, the followers ' +
        'this server leads (as `wald followers`), and where the log lives (disk or memory).',
    );
  addUnaryClientOptions(command).action(async (options: UnaryCommandOptions) => {
    const stats = await withClient(options, (client) =>
      callUnary<GetStatsResponse>((metadata, callback) => client.getStats({}, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printStats(stats, options.json);
  });
}
