/** The median and spread of repeated measurements of one quantity. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every measurement, in the order taken. */
  readonly samples: readonly number[];
}

/**
 * Summarises repeated measurements. The median of an even count is the mean of the middle two.
 *
 * Throws `RangeError` when `samples` is empty.
 */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('samples must not be empty');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples: [...samples] };
}

/**
 * The `p`-th percentile of `samples` by the nearest-rank method: the smallest sample that at least
 * `p` % of the samples do not exceed.
 *
 * Throws `RangeError` when `samples` is empty or `p` is outside 0..100.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('samples must not be empty');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`p must be within 0..100, got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
