import type { Command } from 'commander';
import type { DataDirVerification } from '../offline/data-dir-verifier.js';
import { CommandFailure, UsageError } from './exit-codes.js';
import { describeFault, faultToJson } from './fault-view.js';
import { parseNonNegativeInteger, parsePositiveInteger } from './arg-parsers.js';
import { addReadOnlyOption, addSnapshotDirOption, withOfflineDir } from './offline-options.js';
import { printJson, printText } from './output.js';
import { progressBar } from './progress-bar.js';
import { formatFields, formatTable } from './table.js';
import { DEFAULT_VERIFY_STEP, verifyAgainst, type VerifyAgainstOptions } from './verify-against.js';
import { addUnaryClientOptions } from './wal-client.js';

/** The options of `wald verify`: those of a directory check, or with `against` those of a comparison of two servers. */
interface VerifyCommandOptions extends Omit<VerifyAgainstOptions, 'against'> {
  readonly dataDir?: string | undefined;
  readonly against?: string | undefined;
  readonly readOnly: boolean;
  readonly snapshotDir: string;
}

/** The JSON document of `wald verify --json`. */
function verificationToJson(dataDir: string, report: DataDirVerification): Record<string, unknown> {
  return {
    data_dir: dataDir,
    ok: report.faults.length === 0,
    segment_count: report.segments.length,
    record_count: report.recordCount,
    first_offset: report.segments.length === 0 ? null : report.firstOffset,
    last_offset: report.nextOffset > report.firstOffset ? report.nextOffset - 1 : null,
    next_offset: report.nextOffset,
    index_files_checked: report.indexFilesChecked,
    recovery_point: report.recoveryPoint ?? null,
    clean_close: report.isCleanlyClosed,
    segments: report.segments.map((segment) => ({
      name: segment.name,
      base_offset: segment.baseOffset,
      next_offset: segment.nextOffset,
      record_count: segment.recordCount,
      frame_count: segment.frameCount,
      file_size_bytes: segment.fileSizeBytes,
      data_end_bytes: segment.dataEndBytes,
      format_version: segment.formatVersion ?? null,
      index: segment.index,
    })),
    snapshot_dir: report.snapshotDir,
    snapshots_verified: report.snapshotsVerified,
    snapshots: report.snapshots.map((snapshot) => ({
      id: snapshot.id,
      path: snapshot.path,
      type: snapshot.type,
      wal_offset: snapshot.walOffset,
      verified: snapshot.isVerified,
    })),
    faults: report.faults.map(faultToJson),
    notes: report.notes,
  };
}

function verificationText(dataDir: string, report: DataDirVerification): string {
  const range = report.nextOffset > report.firstOffset ? `offsets ${report.firstOffset} to ${report.nextOffset - 1}` : `none; next offset ${report.nextOffset}`;
  const parts = [
    formatFields([
      ['data dir', dataDir],
      ['segments', `${report.segments.length} (${report.indexFilesChecked} index files checked)`],
      ['records', `${report.recordCount} (${range})`],
      ['recovery point', report.recoveryPoint === undefined ? 'none' : String(report.recoveryPoint)],
      ['clean close', report.isCleanlyClosed ? 'yes' : 'no'],
      ['snapshots', `${report.snapshotsVerified} of ${report.snapshots.length} verified (${report.snapshotDir})`],
      ['faults', String(report.faults.length)],
    ]),
  ];
  if (report.segments.length > 0) {
    parts.push(
      formatTable(
        ['SEGMENT', 'BASE', 'NEXT', 'RECORDS', 'FRAMES', 'BYTES', 'INDEX'],
        report.segments.map((s) => [s.name, String(s.baseOffset), String(s.nextOffset), String(s.recordCount), String(s.frameCount), String(s.fileSizeBytes), s.index]),
      ),
    );
  }
  const lines = [...report.faults.map((fault) => `fault: ${describeFault(fault)}`), ...report.notes.map((note) => `note: ${note}`)];
  if (lines.length > 0) parts.push(lines.join('\n') + '\n');
  parts.push(report.faults.length === 0 ? 'ok: no faults\n' : `${report.faults.length} fault${report.faults.length === 1 ? '' : 's'} found\n`);
  return parts.join('\n');
}

/**
 * Registers `wald verify`: an offline check of every frame, index and snapshot of a data
 * directory (`--data-dir`), or, with `--against`, a comparison of two servers' logs range by range.
 */
export function registerVerifyCommand(program: Command): void {
  const command = program
    .command('verify')
    .summary('check a data directory offline, or compare two servers\' logs (--against)')
    .description(
      'Check a data directory offline (--data-dir): every frame of every segment, every index file against its segment, the ' +
        'CLEAN, PRODUCERS and RECOVERY files, and every snapshot (with its chain). Prints a report; exits 1 on any ' +
        'fault. Takes the directory lock (refused while a server holds it) unless --read-only.\n\n' +
        'With --against HOST:PORT, compare the log of --server with that of the other server instead (a follower ' +
        'with its leader): HashRange over the offsets both hold durably (or --from/--to), --step offsets at a time, ' +
        'narrowing a range that differs down to the first offset whose frame differs. Exits 1 when they differ.',
    )
    .option('--data-dir <path>', 'the data directory to check (the log, its indexes and snapshots); required without --against')
    .option('--against <host:port>', 'compare the log of --server with the log of this server instead of checking a directory')
    .option('--from <offset>', 'with --against: the first offset compared (default: the greater first offset of the two)', parseNonNegativeInteger)
    .option('--to <offset>', 'with --against: the offset after the last compared (default: the smaller high watermark + 1)', parseNonNegativeInteger)
    .option('--step <offsets>', `with --against: offsets per compared range (default ${DEFAULT_VERIFY_STEP})`, parsePositiveInteger);
  addUnaryClientOptions(addSnapshotDirOption(addReadOnlyOption(command))).action(async (options: VerifyCommandOptions) => {
    if (options.against !== undefined) {
      if (options.dataDir !== undefined) throw new UsageError('--data-dir and --against do not go together: one checks a directory, the other compares two servers');
      await verifyAgainst({ ...options, against: options.against });
      return;
    }
    const dataDir = options.dataDir;
    if (dataDir === undefined) throw new UsageError('--data-dir is required (or --against HOST:PORT to compare two servers)');
    const { verifyDataDir } = await import('../offline/data-dir-verifier.js');
    const report = await withOfflineDir({ dataDir, json: options.json }, options.readOnly, true, async (dir) => {
      const bar = progressBar('verify', options.json);
      try {
        return await verifyDataDir(dir.storage, dir.dir, { snapshotDir: options.snapshotDir, progress: bar, isLive: options.readOnly });
      } finally {
        bar.stop();
      }
    });
    if (options.json) printJson(verificationToJson(dataDir, report));
    else printText(verificationText(dataDir, report));
    if (report.faults.length > 0) throw new CommandFailure(`${report.faults.length} fault${report.faults.length === 1 ? '' : 's'} in ${dataDir}`);
  });
}
