import { randomBytes } from 'node:crypto';

/** One producer id of a client, used by at most one unsettled append at a time. */
export interface ProducerLane {
  readonly producerId: string;
  /** The sequence the lane's next append takes. */
  nextSequence: number;
}

/**
 * The producer ids a `WalClient` sends its idempotent appends under: one per append in flight.
 *
 * Why not one id per client: the server's producer table (src/engine/producer-table.ts) keeps only
 * each producer's *last* sequence. After a broken connection, a client with appends 5, 6, 7 of one
 * producer unanswered retries them: 7, if written, is acknowledged as a duplicate, but 5 and 6 get
 * `WAL_SEQUENCE_STALE` whether they were written or failed (a conditional append that did not
 * match), so the client could not tell the caller where they landed. With one lane per unsettled
 * append, each lane's unanswered append is its producer's last sequence: a retry is either the
 * duplicate (with the original offsets) or new (and written now), never ambiguous.
 *
 * Lanes are made on demand and reused most recently released first, so a client uses as many
 * producer ids as it ever had appends in flight at once (at most `maxInFlightMessages` x
 * `maxAppendsPerMessage`). The server remembers `max_producers` (default 10,000) ids, least
 * recently used forgotten first: a retry stays exactly-once as long as fewer ids than that were
 * used by all clients since the original was written.
 */
export class ProducerLanes {
  /** Random per client: a new client (a restarted process) never reuses an old client's sequences. */
  readonly clientId = randomBytes(12).toString('base64url');
  private readonly free: ProducerLane[] = [];
  private created = 0;

  /** How many producer ids this client has used. */
  get size(): number {
    return this.created;
  }

  /** A lane no unsettled append holds; its `nextSequence` is the caller's to take. */
  acquire(): ProducerLane {
    return this.free.pop() ?? { producerId: `${this.clientId}.${this.created++}`, nextSequence: 0 };
  }

  /** The append holding `lane` settled (written, refused, or given up): the lane may carry another. */
  release(lane: ProducerLane): void {
    this.free.push(lane);
  }
}
