/**
 * The options of the key-value view (`StateKeeper.open`), declared once: name, default, unit,
 * documentation and check of each. `wald serve` composes these declarations into its
 * configuration (src/config/serve-config.ts), so each is also a config key with the same name in
 * snake_case (`maxStateBytes` is `max_state_bytes`, `--max-state-bytes`, `WALD_MAX_STATE_BYTES`).
 */
import { isAbsolute, join } from 'node:path';
import { booleanOption, integerOption, optionGroup, textOption, type OptionDeclarations } from '../options/option-spec.js';
import { OptionSet, type OptionInput, type OptionValues } from '../options/option-set.js';
import { DEFAULT_MAX_STATE_BYTES } from './key-state.js';
import { DEFAULT_MAX_ENDED_TXNS } from './txn-table.js';

/** Default of `snapshot_dir`: a directory of that name inside the data directory. */
export const DEFAULT_SNAPSHOT_DIR = 'snapshots';

/** Default of `compaction.retention_ms`: a day. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Every option of the key-value view, in the order of `--help` and docs/configuration.md. */
export const STATE_OPTION_DECLARATIONS = {
  maxStateBytes: integerOption({
    default: DEFAULT_MAX_STATE_BYTES,
    unit: 'bytes',
    doc: 'cap on the memory of the key-value view (its estimate: keys, values and a per-key overhead)',
    why:
      'Over it, appends that would add keys are refused (`RESOURCE_EXHAUSTED`, reason `WAL_STATE_FULL`) instead of ' +
      'the server running out of memory; overwrites and deletes are still accepted. The estimate errs high ' +
      '(docs/state.md); `GetStats` `state_memory_bytes` shows it. Keep it well below the heap Node is given ' +
      '(`--max-old-space-size`): writing a snapshot may briefly copy tree nodes on top of it.',
  }),
  maxPointInTimeBuilds: integerOption({
    default: 2,
    unit: 'builds',
    doc: 'states at a point in time (StateAt) built at once at most; more are refused',
    why:
      'Each build is a state of its own, up to max_state_bytes, beside the live view: the limit bounds their memory ' +
      '(at most this many times max_state_bytes more). A request beyond it gets `RESOURCE_EXHAUSTED`, reason ' +
      '`WAL_TOO_MANY_BUILDS`, at once rather than waiting (docs/point-in-time.md).',
  }),
  snapshotDir: textOption({
    default: DEFAULT_SNAPSHOT_DIR,
    unit: 'path',
    doc: 'directory of the snapshot files; a relative path is inside data_dir',
    why:
      'The server loads the newest snapshot that verifies from here when it opens, then replays the log after it. ' +
      'Relative paths are taken from the data directory (not the working directory), so the default keeps ' +
      'snapshots next to the log they belong to. The log\'s own recovery never touches this directory.',
  }),
  tombstoneRetentionMs: integerOption(
    {
      default: 24 * 60 * 60 * 1000,
      unit: 'ms',
      doc: 'how long key compaction (compact --aggressive) keeps a DELETE record (tombstone) at least',
      why:
        'Key compaction drops records superseded by a later write to the same key; a tombstone is superseded by nothing, ' +
        'and a reader or follower catching up must still see it to delete the key. Past this age it is dropped, and ' +
        'only then if no snapshot a rebuild could start from lies at or below it (docs/state.md, "Key compaction"). 0: ' +
        'tombstones are kept only as long as that rule needs.',
    },
    { min: 0 },
  ),
  txnTimeoutMs: integerOption(
    {
      default: 0,
      unit: 'ms',
      doc: 'aborts a transaction still in doubt (prepared, neither committed nor aborted) this long after its PREPARE; 0: never',
      why:
        'A client that dies between PREPARE and COMMIT leaves its transaction in doubt for ever, holding its writes in memory. ' +
        'Off by default: only the application knows how long its coordinator may take; when on, the server appends an ABORT ' +
        'with the reason and logs it (docs/transactions.md).',
    },
    { min: 0 },
  ),
  txnMaxEnded: integerOption(
    {
      default: DEFAULT_MAX_ENDED_TXNS,
      unit: 'transactions',
      doc: 'ended (committed or aborted) transactions the view remembers, so that their ids are refused a second PREPARE',
      why:
        'The refusal rules need the outcome of ended transactions, and an unbounded memory of them would grow with the log. ' +
        'Past this many the oldest ended is forgotten: its id can then be prepared again, and a COMMIT or ABORT of it is ' +
        'refused as never prepared. Snapshots carry the remembered ones, so a restart forgets nothing more.',
    },
    { min: 0 },
  ),
  compaction: optionGroup({
    enabled: booleanOption({
      default: false,
      doc: 'run compaction by itself when a threshold below is reached',
      why:
        'Off by default: compaction deletes segments, and an operator should choose when that starts. `Compact` ' +
        '(`wald compact`) works either way, and retention and the byte cap below apply to it too.',
    }),
    eventsThreshold: integerOption(
      {
        default: 1_000_000,
        unit: 'records',
        doc: 'automatic compaction runs once this many records came after the newest snapshot; 0: never for this reason',
        why:
          'Bounds the log a restart replays on top of the newest snapshot (rebuilding runs at about 1M records/s, ' +
          'docs/benchmarks.md), so a million keeps a restart near a second.',
      },
      { min: 0 },
    ),
    sizeThresholdBytes: integerOption(
      {
        default: 1024 * 1024 * 1024,
        unit: 'bytes',
        doc: 'automatic compaction runs once the log\'s segment files hold this many bytes and some could be deleted; 0: never for this reason',
        why:
          'Only when a compaction would reclaim something (segments older than retention_ms, or above max_log_bytes): ' +
          'a log kept whole by retention is not snapshotted again and again for nothing.',
      },
      { min: 0 },
    ),
    minIntervalMs: integerOption(
      {
        default: 60_000,
        unit: 'ms',
        doc: 'least time between the starts of two automatic compactions',
        why: 'Each run writes a full snapshot of the view: a burst of appends must not turn into a snapshot per check.',
      },
      { min: 0 },
    ),
    checkIntervalMs: integerOption({
      default: 1000,
      unit: 'ms',
      doc: 'how often the server checks the automatic compaction thresholds',
      why: 'A check reads counters and the snapshot headers (no log data); a second is often enough for thresholds counted in millions of records or gigabytes.',
    }),
    retentionMs: integerOption(
      {
        default: DEFAULT_RETENTION_MS,
        unit: 'ms',
        doc: 'compaction keeps the segments whose newest record is younger than this, even when a snapshot covers them',
        why:
          'Tailers and followers that fell behind can catch up from the log for a day instead of installing a snapshot. ' +
          'max_log_bytes wins over it. 0 keeps nothing for age.',
      },
      { min: 0 },
    ),
    maxLogBytes: integerOption(
      {
        default: 0,
        unit: 'bytes',
        doc: 'hard cap on the bytes of segment files: compaction deletes the oldest covered segments beyond it, whatever their age; 0: no cap',
        why:
          'Wins over retention_ms so that a burst cannot fill the disk; still only segments a durable snapshot covers ' +
          'are deleted, so the log may stay above the cap until the next snapshot.',
      },
      { min: 0 },
    ),
    keepSnapshots: integerOption({
      default: 2,
      unit: 'snapshots',
      doc: 'full and incremental snapshots a compaction keeps; older ones below the first retained offset are deleted',
      why:
        'Recovery falls back to an older snapshot when the newest fails to verify, but only to one at or above the ' +
        'first retained offset (the log after it must still be there); two keep one fallback across a compaction.',
    }),
  }),
} satisfies OptionDeclarations;

/** The view's options and their checks. */
export const STATE_OPTIONS = new OptionSet(STATE_OPTION_DECLARATIONS);

/** The view's declared options, every one present. */
export type StateOptionValues = OptionValues<typeof STATE_OPTION_DECLARATIONS>;

/** Options of the key-value view as a caller passes them: each optional (see {@link STATE_OPTION_DECLARATIONS}). */
export type StateOptions = OptionInput<typeof STATE_OPTION_DECLARATIONS>;

/**
 * Fills in the defaults of `options` and checks them.
 *
 * @throws TypeError / RangeError naming the option (`options.maxStateBytes must be a positive integer, got 0`).
 */
export function resolveStateOptions(options: StateOptions = {}): StateOptionValues {
  return STATE_OPTIONS.resolve(options, {});
}

/** Where the snapshots of the log in `dataDir` are: `snapshotDir` itself when absolute, else inside `dataDir`. */
export function snapshotDirOf(dataDir: string, snapshotDir: string): string {
  return isAbsolute(snapshotDir) ? snapshotDir : join(dataDir, snapshotDir);
}
