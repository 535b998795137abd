import type { ProducerState } from '../codec/index-file.js';
import type { AppendResult } from './types.js';

/** What an idempotent append with a given (producer, sequence) is, against the table. */
export type ProducerCheck =
  | { readonly kind: 'new' }
  /** The producer's last sequence again: answer with the original append's outcome. */
  | { readonly kind: 'duplicate'; readonly result: Promise<AppendResult> }
  | { readonly kind: 'stale'; readonly lastSequence: number };

/** How to undo {@link ProducerTable.noteWritten}: the producer's state before, and whom it evicted. */
export interface ProducerUndo {
  readonly previous: ProducerState | undefined;
  /** The least recently used producer the new entry pushed out of a full table, if any. */
  readonly evicted: ProducerState | undefined;
}

interface InFlight {
  readonly sequence: number;
  readonly result: Promise<AppendResult>;
}

/**
 * The idempotent-append table: for each producer id, its last sequence and where that append landed.
 *
 * Two parts, so that what is persisted is always the log's own state:
 * - `written`: each producer's last append *in the log file*, in log order. The writer updates it
 *   as it writes each frame (before a rotation persists it in the sealed segment's index), and puts
 *   the previous state back when a frame is cut off again (a failed write or sync). Bounded: the
 *   least recently used producer is forgotten beyond `maxProducers`.
 * - `inFlight`: appends accepted but not yet settled, so that a retry waits for the original
 *   instead of writing a second copy.
 */
export class ProducerTable {
  private readonly written = new Map<string, ProducerState>();
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly maxProducers: number) {}

  /** Classifies an append of `sequence` by `producerId`. */
  check(producerId: string, sequence: number): ProducerCheck {
    const pending = this.inFlight.get(producerId);
    const last = this.touch(producerId);
    if (pending !== undefined) {
      if (sequence === pending.sequence) return { kind: 'duplicate', result: pending.result.then((r) => ({ ...r, duplicate: true })) };
      if (sequence < pending.sequence) return { kind: 'stale', lastSequence: pending.sequence };
      return { kind: 'new' };
    }
    if (last === undefined || sequence > last.sequence) return { kind: 'new' };
    if (sequence < last.sequence) return { kind: 'stale', lastSequence: last.sequence };
    const { firstOffset, lastOffset, timestamp } = last;
    return { kind: 'duplicate', result: Promise.resolve({ firstOffset, lastOffset, timestamp, duplicate: true }) };
  }

  /**
   * Whether {@link check} would answer an append of `sequence` by `producerId` as a duplicate,
   * without its side effects: no promise derived from the original's (which nobody would handle
   * should the original fail), no change to the least-recently-used order.
   */
  isDuplicate(producerId: string, sequence: number): boolean {
    const pending = this.inFlight.get(producerId);
    if (pending !== undefined) return sequence === pending.sequence;
    return this.written.get(producerId)?.sequence === sequence;
  }

  /** Marks an accepted append as in flight until {@link end}. */
  begin(producerId: string, sequence: number, result: Promise<AppendResult>): void {
    this.inFlight.set(producerId, { sequence, result });
  }

  /** The append of `sequence` settled (either way): it is no longer in flight. */
  end(producerId: string, sequence: number): void {
    if (this.inFlight.get(producerId)?.sequence === sequence) this.inFlight.delete(producerId);
  }

  /**
   * A frame carrying `state` was written to the log. Returns what {@link revert} needs to put the
   * table back should the frame be cut off again.
   */
  noteWritten(state: ProducerState): ProducerUndo {
    const previous = this.written.get(state.producerId);
    const evicted = this.put(state.producerId, state);
    return { previous, evicted };
  }

  /**
   * Undoes {@link noteWritten} for a frame of `producerId` cut off the log: its state is the previous
   * one again, and a producer its entry evicted comes back (as the least recently used).
   */
  revert(producerId: string, undo: ProducerUndo): void {
    if (undo.previous === undefined) this.written.delete(producerId);
    else this.put(producerId, undo.previous);
    const evicted = undo.evicted;
    if (evicted !== undefined && !this.written.has(evicted.producerId) && this.written.size < this.maxProducers) {
      // Back at the least recently used end, where it was.
      const rest = [...this.written.entries()];
      this.written.clear();
      this.written.set(evicted.producerId, evicted);
      for (const [id, state] of rest) this.written.set(id, state);
    }
  }

  /** Each producer's last append in the log, oldest first, for persisting in an index file. */
  snapshot(): ProducerState[] {
    return [...this.written.values()];
  }

  private touch(producerId: string): ProducerState | undefined {
    const state = this.written.get(producerId);
    if (state !== undefined) this.put(producerId, state);
    return state;
  }

  /** Sets a producer's state as most recently used; returns the state it evicted, if any. */
  private put(producerId: string, state: ProducerState): ProducerState | undefined {
    this.written.delete(producerId);
    this.written.set(producerId, state);
    if (this.written.size <= this.maxProducers) return undefined;
    const oldest = this.written.entries().next().value;
    if (oldest === undefined) return undefined;
    this.written.delete(oldest[0]);
    return oldest[1];
  }
}
