/**
 * Where a long offline run reports how far it got, in bytes: the CLI draws a progress bar from it
 * on a terminal. Totals are announced as the work is found, so `addTotal` may be called more than once.
 */
export interface Progress {
  /** More bytes to go through. */
  addTotal(bytes: number): void;
  /** Bytes gone through. */
  advance(bytes: number): void;
}

/** A progress that goes nowhere: the default when nobody watches. */
export const NO_PROGRESS: Progress = Object.freeze({ addTotal: () => {}, advance: () => {} });
