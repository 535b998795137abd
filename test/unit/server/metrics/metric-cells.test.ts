/**
 * The plain-number counters and histograms of the append path render exactly what prom-client's
 * own metrics render for the same counts and observations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterCells, HistogramCells } from '../../../../src/server/metrics/metric-cells.js';
import { random, testSeed } from '../../../support/seed.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];

describe('metric cells', () => {
  it('render the exposition of prom-client counters and histograms given the same work', async () => {
    const next = random(testSeed('metric-cells'));
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new CounterCells({ name: 'x_total', help: 'x', labelNames: ['rpc', 'outcome'], registers: [ours] });
    const histogram = new HistogramCells({ name: 'y_seconds', help: 'y', labelNames: ['rpc'], registers: [ours] }, BOUNDS);
    const plain = new HistogramCells({ name: 'z', help: 'z', labelNames: [], registers: [ours] }, BOUNDS);
    const theirCounter = new Counter({ name: 'x_total', help: 'x', labelNames: ['rpc', 'outcome'], registers: [theirs] });
    const theirHistogram = new Histogram({ name: 'y_seconds', help: 'y', labelNames: ['rpc'], buckets: BOUNDS, registers: [theirs] });
    const theirPlain = new Histogram({ name: 'z', help: 'z', buckets: BOUNDS, registers: [theirs] });
    const plainCell = plain.cell({});
    for (let i = 0; i < 1000; i++) {
      const rpc = next() < 0.5 ? 'Append' : 'Read';
      const outcome = next() < 0.8 ? 'OK' : 'ABORTED';
      const amount = Math.floor(next() * 5);
      counter.cell({ rpc, outcome }).value += amount;
      theirCounter.inc({ rpc, outcome }, amount);
      // Bounds themselves are inside their bucket (le), as in Prometheus.
      const value = next() < 0.1 ? BOUNDS[Math.floor(next() * BOUNDS.length)]! : next() * next() * 2;
      histogram.cell({ rpc }).observe(value);
      theirHistogram.observe({ rpc }, value);
      plainCell.observe(value);
      theirPlain.observe(value);
    }
    // Sums are compared as rendered: both add the same values in the same order.
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('forget their observations when the registry is reset', async () => {
    const registry = new Registry();
    const histogram = new HistogramCells({ name: 'y_seconds', help: 'y', labelNames: [], registers: [registry] }, BOUNDS);
    histogram.cell({}).observe(0.5);
    registry.resetMetrics();
    assert.match(await registry.metrics(), /^y_seconds_count 0$/m);
  });
});
