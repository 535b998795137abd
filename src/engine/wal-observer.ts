import type { WriteState } from './types.js';

/**
 * What the log tells an observer as it works: group commits, syncs, segment rolls and changes of
 * its write state. The server turns these into metrics and log lines; the engine itself knows
 * nothing of either, so it stays usable as a library with no metrics package. Every method is
 * optional and called synchronously on the writer's path: an observer must be quick and must not
 * throw (a throw would fail the appends of the group being written).
 */
export interface WalObserver {
  /**
   * A group commit was written (and synced, when the policy or an append asked): `appends`
   * batches, holding `records` records in `bytes` bytes of frames, acknowledged together.
   */
  onCommit?(appends: number, records: number, bytes: number): void;
  /** An `fdatasync` of the active segment succeeded after `durationMs` (fractional). */
  onSync?(durationMs: number): void;
  /** The active segment `sealed` was sealed and `created` (starting at `baseOffset`) took its place. */
  onSegmentRoll?(sealed: string, created: string, baseOffset: number): void;
  /** The log's write state changed: disk-full entered or left, or read-only entered. */
  onWriteStateChange?(state: WriteState, previous: WriteState): void;
}
