/**
 * The options of the key-value view (`StateKeeper.open`), declared once: name, default, unit,
 * documentation and check of each. `wald serve` composes these declarations into its
 * configuration (src/config/serve-config.ts), so each is also a config key with the same name in
 * snake_case (`maxStateBytes` is `max_state_bytes`, `--max-state-bytes`, `WALD_MAX_STATE_BYTES`).
 */
import { isAbsolute, join } from 'node:path';
import { integerOption, textOption, type OptionDeclarations } from '../options/option-spec.js';
import { OptionSet, type OptionInput, type OptionValues } from '../options/option-set.js';
import { DEFAULT_MAX_STATE_BYTES } from './key-state.js';

/** Default of `snapshot_dir`: a directory of that name inside the data directory. */
export const DEFAULT_SNAPSHOT_DIR = 'snapshots';

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
