import type { RecordTypeCounts as RecordTypeCountsMessage } from '../gen/wald/v1/transaction.js';
import type { RecordTypeCounts } from '../state/compactor.js';

/** Record counts by type (a dry run's scan) as the wire's `RecordTypeCounts`: Compact and GetStats both send them. */
export function recordTypeCountsMessage(counts: RecordTypeCounts): RecordTypeCountsMessage {
  return {
    put: BigInt(counts.put),
    delete: BigInt(counts.delete),
    prepare: BigInt(counts.prepare),
    commit: BigInt(counts.commit),
    abort: BigInt(counts.abort),
    checkpoint: BigInt(counts.checkpoint),
    flushAll: BigInt(counts.flush_all),
  };
}
