import type { BenchConfig } from './bench-config.js';
import type { Summary } from './summary.js';

/** What a row's figure means: higher is better for rates, lower for durations. */
export type BenchUnit = 'records/s' | 'transactions/s' | 'MB/s' | 'ms';

/** A target a row is held to: a ratio to its baseline, or an absolute figure. */
export type BenchTarget =
  | { readonly kind: 'ratio-at-least'; readonly value: number }
  | { readonly kind: 'ratio-at-most'; readonly value: number }
  | { readonly kind: 'at-least'; readonly value: number }
  | { readonly kind: 'at-most'; readonly value: number };

/** One line of a benchmark table: wald's figure, and the baseline beside it (plain `node:fs`, or a no-op gRPC server). */
export interface BenchRow {
  /** Short id, e.g. `a` or `d1`. */
  readonly id: string;
  readonly name: string;
  readonly unit: BenchUnit;
  readonly wald: Summary;
  readonly baseline?: { readonly name: string; readonly summary: Summary } | undefined;
  /** `wald.median / baseline.median`. */
  readonly ratio?: number | undefined;
  readonly target?: BenchTarget | undefined;
  /** Whether the target is met; undefined when the row has none. */
  readonly isMet?: boolean | undefined;
  /** Extra facts measured alongside (records per fsync, bytes scanned...). */
  readonly notes?: readonly string[] | undefined;
}

/** What a part of the benchmark hands back to the entry point. */
export interface BenchPartResult {
  readonly part: string;
  readonly rows: readonly BenchRow[];
  /** How the part was set up (sizes, concurrency), printed under its table. */
  readonly setup: readonly string[];
}

/** One named part of `npm run bench` (`engine`, `service`). */
export type BenchPart = (config: BenchConfig) => Promise<BenchPartResult>;

/** Builds a row from the two summaries, computing the ratio and whether the target is met. */
export function makeRow(row: Omit<BenchRow, 'ratio' | 'isMet'>): BenchRow {
  const ratio = row.baseline === undefined ? undefined : row.wald.median / row.baseline.summary.median;
  let isMet: boolean | undefined;
  const target = row.target;
  if (target?.kind === 'at-least') isMet = row.wald.median >= target.value;
  else if (target?.kind === 'at-most') isMet = row.wald.median <= target.value;
  else if (target?.kind === 'ratio-at-least' && ratio !== undefined) isMet = ratio >= target.value;
  else if (target?.kind === 'ratio-at-most' && ratio !== undefined) isMet = ratio <= target.value;
  return { ...row, ratio, isMet };
}
