import type { RecordTypeCounts } from '../gen/wald/v1/transaction.js';
import { jsonInteger } from './record-view.js';

/** Record counts by type as JSON: one number per type, the log's type names (`wald compact --dry-run --json`, `wald stats --json`). */
export function recordCountsJson(counts: RecordTypeCounts): Record<string, number | string> {
  return {
    put: jsonInteger(counts.put),
    delete: jsonInteger(counts.delete),
    prepare: jsonInteger(counts.prepare),
    commit: jsonInteger(counts.commit),
    abort: jsonInteger(counts.abort),
    checkpoint: jsonInteger(counts.checkpoint),
    flush_all: jsonInteger(counts.flushAll),
  };
}

/** Record counts by type on one line: `put 10, delete 2, ...`. */
export function recordCountsText(counts: RecordTypeCounts): string {
  return Object.entries(recordCountsJson(counts))
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}
