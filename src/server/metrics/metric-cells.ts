import { Counter, type Metric, type Registry } from 'prom-client';

/**
 * Counters and histograms whose counting is a plain addition, for the paths every append takes.
 *
 * prom-client hashes a label set on every `inc` and `observe`, a label child's too (it calls back
 * with its labels), and a histogram looks its bucket up by bound in an object: about 0.2 to 0.5 us
 * a call measured here, several per append. These keep one mutable cell per label set instead,
 * made once and held by the caller, and hand the totals to prom-client when the registry is
 * scraped: the counter through a prom-client `Counter`'s `collect`, the histogram as a metric of
 * its own in the registry (prom-client has no way to set a histogram's buckets).
 */

/** The running total of one series of a {@link CounterCells}. */
export interface CounterCell {
  value: number;
}

/** The observations of one series of a {@link HistogramCells}. */
export class HistogramCell {
  /** Observations per bucket (not cumulative); the last one is above every bound (`+Inf`). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value` in its bucket. */
  observe(value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** What a family of cells is declared with, as a prom-client metric is. */
export interface CellsConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** The key of a label set, in the order of `labelNames`. */
function keyOf<L extends string>(labelNames: readonly L[], labels: Readonly<Record<L, string>>): string {
  return labelNames.map((name) => labels[name]).join('\u0000');
}

/** A counter family: a cell per label set, copied into a prom-client `Counter` at each scrape. */
export class CounterCells<L extends string> {
  private readonly cells = new Map<string, { readonly labels: Readonly<Record<L, string>>; readonly cell: CounterCell }>();

  constructor(private readonly config: CellsConfig<L>) {
    const { cells } = this;
    new Counter<L>({
      name: config.name,
      help: config.help,
      labelNames: config.labelNames,
      registers: [...config.registers],
      collect() {
        this.reset();
        for (const { labels, cell } of cells.values()) this.inc(labels, cell.value);
      },
    });
  }

  /** The cell of `labels` (made at the first call, shown from then on, at 0 until counted): keep it and add to it. */
  cell(labels: Readonly<Record<L, string>>): CounterCell {
    const key = keyOf(this.config.labelNames, labels);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, cell: { value: 0 } };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }
}

/** One exposed sample, as prom-client's registry renders it. */
interface Sample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * A histogram family: a {@link HistogramCell} per label set, registered in the registry as a
 * metric of its own that renders `_bucket` (cumulative, `le`), `_sum` and `_count` as prom-client's
 * histograms do.
 */
export class HistogramCells<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, { readonly labels: Readonly<Record<L, string>>; readonly cell: HistogramCell }>();

  constructor(
    private readonly config: CellsConfig<L>,
    /** Upper bounds of the buckets, ascending (`+Inf` is implied). */
    private readonly bounds: readonly number[],
  ) {
    // The registry renders any object with this shape (name, help, type, get, reset); its types
    // admit only its own metric classes.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The metric's name, as the registry knows it. */
  get name(): string {
    return this.config.name;
  }

  /** The metric's help text. */
  get help(): string {
    return this.config.help;
  }

  /** The cell of `labels` (made at the first call, shown from then on): keep it and observe into it. */
  cell(labels: Readonly<Record<L, string>>): HistogramCell {
    const key = keyOf(this.config.labelNames, labels);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, cell: new HistogramCell(this.bounds) };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  /** The samples of every cell, for the registry. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const bucketName = `${this.name}_bucket`;
    const values: Sample[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({ metricName: bucketName, labels: { le: bound, ...labels }, value: cumulative });
      });
      values.push({ metricName: bucketName, labels: { le: '+Inf', ...labels }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every observation (the registry's `resetMetrics`). */
  reset(): void {
    for (const { cell } of this.cells.values()) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}
