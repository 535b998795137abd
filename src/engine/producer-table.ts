import type { ProducerState } from '../codec/index-file.js';
import type { AppendResult } from './types.js';

/** What the table holds for one producer: its last sequence, settled or still being written. */
export interface ProducerEntry {
  readonly sequence: number;
  /** The append's outcome while it is queued; a retry waits on it rather than writing again. */
  readonly pending?: Promise<AppendResult> | undefined;
  readonly settled?: ProducerState | undefined;
}

/**
 * The idempotent-append table: producer id -> its last sequence and where that append landed.
 * Bounded: the least recently used producer is forgotten beyond `maxProducers`.
 */
export class ProducerTable {
  private readonly entries = new Map<string, ProducerEntry>();

  constructor(private readonly maxProducers: number) {}

  /** The entry of `producerId`, refreshed as most recently used. */
  get(producerId: string): ProducerEntry | undefined {
    const entry = this.entries.get(producerId);
    if (entry !== undefined) {
      this.entries.delete(producerId);
      this.entries.set(producerId, entry);
    }
    return entry;
  }

  set(producerId: string, entry: ProducerEntry): void {
    this.entries.delete(producerId);
    this.entries.set(producerId, entry);
    if (this.entries.size > this.maxProducers) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** Forgets `producerId` if its entry is still `entry` (a failed append must not be remembered). */
  forget(producerId: string, entry: ProducerEntry): void {
    if (this.entries.get(producerId) === entry) this.entries.delete(producerId);
  }

  /** Records a settled append (from recovery or after a write). */
  settle(state: ProducerState): void {
    this.set(state.producerId, { sequence: state.sequence, settled: state });
  }

  /** Settled entries, oldest first, for persisting in an index file. */
  snapshot(): ProducerState[] {
    const out: ProducerState[] = [];
    for (const entry of this.entries.values()) if (entry.settled !== undefined) out.push(entry.settled);
    return out;
  }
}
