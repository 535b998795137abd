/** One append waiting for its followers. */
interface Waiter {
  /** The append's last offset: a follower has it once its durable next offset is above this. */
  readonly lastOffset: number;
  readonly needed: number;
  /** Followers that have it now. */
  count: number;
  readonly resolve: (count: number) => void;
}

/**
 * The appends waiting for `min_replicas` followers to hold them durably. Each waiter keeps the
 * count of followers holding its batch, moved by every change of a follower's durable next
 * offset ({@link moved}), so a report wakes exactly the waiters it completes: nothing polls, and a
 * report costs one pass over the waiters (at most the appends in flight).
 */
export class ReplicaWaiters {
  private readonly waiters = new Set<Waiter>();

  /** Appends waiting now. */
  get size(): number {
    return this.waiters.size;
  }

  /**
   * Resolves with the number of followers holding the batch ending at `lastOffset` once it
   * reaches `needed` (at once when `count`, the followers holding it now, does), or with the
   * count so far when `signal` aborts. Never rejects.
   */
  wait(lastOffset: number, needed: number, count: number, signal: AbortSignal): Promise<number> {
    if (count >= needed || signal.aborted) return Promise.resolve(count);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        lastOffset,
        needed,
        count,
        resolve: (final) => {
          this.waiters.delete(waiter);
          signal.removeEventListener('abort', onAbort);
          resolve(final);
        },
      };
      const onAbort = (): void => waiter.resolve(waiter.count);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /**
   * A follower's durable next offset moved from `before` to `after` (0 for a follower not known
   * before, or forgotten now): the waiters whose batch lies between gain (or lose) it.
   */
  moved(before: number, after: number): void {
    if (before === after) return;
    for (const waiter of [...this.waiters]) {
      const had = before > waiter.lastOffset;
      const has = after > waiter.lastOffset;
      if (had === has) continue;
      waiter.count += has ? 1 : -1;
      if (waiter.count >= waiter.needed) waiter.resolve(waiter.count);
    }
  }
}
