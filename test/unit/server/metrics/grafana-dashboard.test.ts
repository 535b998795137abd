/**
 * docs/grafana/wald.json, the dashboard shipped for operators, against the metrics the server
 * registers: every metric a panel or variable queries exists, and every wald metric has a panel.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ServerMetrics } from '../../../../src/server/metrics/server-metrics.js';
import { declaredFamilies } from '../../../support/prometheus-text.js';

const DASHBOARD_PATH = fileURLToPath(new URL('../../../../../docs/grafana/wald.json', import.meta.url));

/** Every PromQL expression of the dashboard: its panels' targets (rows' panels too) and its query variables. */
function expressionsOf(dashboard: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if ((key === 'expr' || key === 'definition') && typeof value === 'string') found.push(value);
        else if (key === 'query' && typeof value === 'string' && value.includes('(')) found.push(value);
        else visit(value);
      }
    }
  };
  visit(dashboard);
  return found;
}

/** The metric names `expression` uses: identifiers of wald's own metrics and of Node's process metrics. */
function metricNamesOf(expression: string): string[] {
  return [...expression.matchAll(/\b(?:wald|process|nodejs)_[a-zA-Z0-9_]+\b/g)].map((match) => match[0]);
}

/** The series names the registry exposes (its `# TYPE` lines): each metric's own, and a histogram's `_bucket`, `_sum` and `_count`. */
async function exposedNames(metrics: ServerMetrics): Promise<{ series: Set<string>; families: string[] }> {
  const families = declaredFamilies((await metrics.exposition()).text);
  const series = new Set<string>();
  for (const [name, type] of families) {
    if (type === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
    } else {
      series.add(name);
    }
  }
  return { series, families: [...families.keys()] };
}

describe('docs/grafana/wald.json', () => {
  const dashboard: unknown = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8'));
  const expressions = expressionsOf(dashboard);

  it('has panels with queries', () => {
    assert.ok(expressions.length >= 20, `${expressions.length} expressions`);
  });

  it('queries only metrics the server registers', async () => {
    const { series } = await exposedNames(new ServerMetrics());
    const unknown = new Set<string>();
    for (const expression of expressions) {
      for (const name of metricNamesOf(expression)) if (!series.has(name)) unknown.add(name);
    }
    assert.deepEqual([...unknown], [], 'metrics named by the dashboard but not registered');
  });

  it('shows every wald metric the server registers', async () => {
    const { families } = await exposedNames(new ServerMetrics());
    const used = new Set(expressions.flatMap(metricNamesOf).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    const missing = families.filter((name) => name.startsWith('wald_') && !used.has(name) && !used.has(`${name}_total`));
    assert.deepEqual(missing, [], 'wald metrics with no panel');
  });
});
