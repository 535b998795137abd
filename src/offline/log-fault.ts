/**
 * What the offline tools report about a data directory: a fault is damage (exit 1 from
 * `wald verify`), a note is something an operator may want to know that recovery handles by itself.
 */

/**
 * The kinds of fault:
 * - `corruption`: log bytes that do not check out where recovery refuses to open (a sealed segment,
 *   or damage in the active segment that the recovery point or a later frame vouches for), a bad
 *   segment header, a gap between segments, a log that ends below its recovery point;
 * - `torn-tail`: damage at the end of the active segment that recovery cuts (and keeps in a side
 *   file) when the log opens;
 * - `index`: an index file that does not check out or disagrees with its segment (recovery rebuilds it);
 * - `file`: another file wald writes (`CLEAN`, `PRODUCERS`, `RECOVERY`) that does not check out;
 * - `snapshot`: a snapshot file (or a file of its chain) that does not verify.
 */
export type LogFaultKind = 'corruption' | 'torn-tail' | 'index' | 'file' | 'snapshot';

/** One fault found in a data directory. */
export interface LogFault {
  readonly kind: LogFaultKind;
  /** The file at fault: a name inside the data directory (`00000000000000000000.seg`), or a snapshot's path. */
  readonly file: string;
  /** Byte position in `file` where the damage starts, when it has one. */
  readonly position: number | undefined;
  readonly reason: string;
  /** Log faults: the last offset before the damage that checks out (-1 when none does). */
  readonly lastGoodOffset?: number | undefined;
  /** Log faults: the first offset of the first valid frame after the damage, if any. */
  readonly nextGoodOffset?: number | undefined;
  /** Log faults: where that frame starts. */
  readonly nextGoodPosition?: number | undefined;
  /** `torn-tail`: the bytes recovery cuts (up to the last non-zero byte). */
  readonly bytes?: number | undefined;
}
