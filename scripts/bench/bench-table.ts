import type { BenchPartResult, BenchRow, BenchTarget } from './bench-part.js';
import type { Summary } from './summary.js';

function figure(value: number, unit: BenchRow['unit']): string {
  if (unit === 'ms' || unit === 'MB/s') return value < 10 ? value.toFixed(2) : value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

function spread(summary: Summary, unit: BenchRow['unit']): string {
  return `${figure(summary.median, unit)} (${figure(summary.min, unit)}–${figure(summary.max, unit)})`;
}

function targetText(target: BenchTarget | undefined, unit: BenchRow['unit']): string {
  if (target === undefined) return '–';
  if (target.kind === 'ratio-at-least') return `ratio ≥ ${target.value}`;
  if (target.kind === 'ratio-at-most') return `ratio ≤ ${target.value}`;
  if (target.kind === 'at-most') return `≤ ${figure(target.value, unit)} ${unit}`;
  return `≥ ${figure(target.value, unit)} ${unit}`;
}

function ratioText(ratio: number | undefined): string {
  if (ratio === undefined) return '–';
  return ratio < 0.1 ? ratio.toFixed(3) : ratio.toFixed(2);
}

/** A part's rows as a Markdown table (median and min–max of each figure), then its notes. */
export function formatPart(result: BenchPartResult): string {
  const lines = [
    `### ${result.part}`,
    '',
    '| | workload | unit | wald: median (min–max) | baseline | baseline: median (min–max) | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of result.rows) {
    const met = row.isMet === undefined ? '–' : row.isMet ? 'yes' : '**no**';
    lines.push(
      `| ${row.id} | ${row.name} | ${row.unit} | ${spread(row.wald, row.unit)} | ${row.baseline?.name ?? '–'} | ` +
        `${row.baseline === undefined ? '–' : spread(row.baseline.summary, row.unit)} | ${ratioText(row.ratio)} | ` +
        `${targetText(row.target, row.unit)} | ${met} |`,
    );
  }
  const notes = result.rows.flatMap((row) => (row.notes ?? []).map((note) => `- ${row.id}: ${note}`));
  if (result.setup.length > 0 || notes.length > 0) lines.push('', ...result.setup.map((s) => `- ${s}`), ...notes);
  return lines.join('\n');
}
