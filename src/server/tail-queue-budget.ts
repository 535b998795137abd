/**
 * The server-wide budget of TailWal message bytes: what all tails together may hold in memory at
 * once, waiting for their clients' transports (`maxTotalTailQueueBytes`).
 *
 * Each tail already has its own cap (`maxTailQueueBytes`), but a thousand stuck consumers at that
 * cap would pin gigabytes. A tail therefore reserves bytes here before it reads the log, and the
 * bytes come back when the transport takes the message, or when the call ends (cancel, error,
 * shutdown). A tail that finds the budget spent waits in line; it is never failed for it.
 */

/** Bytes a tail holds of the {@link TailQueueBudget}; given back once, by {@link release}. */
export class TailQueueGrant {
  private heldBytes: number;

  /** @internal Made by {@link TailQueueBudget.reserve} only. */
  constructor(
    bytes: number,
    private readonly giveBack: (bytes: number) => void,
  ) {
    this.heldBytes = bytes;
  }

  /** Bytes held now (0 once released). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** True once every byte has been given back. */
  get isReleased(): boolean {
    return this.heldBytes === 0;
  }

  /**
   * Gives back all but `bytes` of the grant, once the message it was reserved for is encoded and
   * its size known.
   *
   * @throws RangeError when `bytes` is not an integer from 1 to {@link bytes}.
   */
  shrinkTo(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > this.heldBytes) {
      throw new RangeError(`bytes must be an integer from 1 to ${this.heldBytes}, got ${String(bytes)}`);
    }
    const excess = this.heldBytes - bytes;
    if (excess > 0) {
      this.heldBytes = bytes;
      this.giveBack(excess);
    }
  }

  /** Gives every byte back. Idempotent: the second and later calls do nothing. */
  release(): void {
    const bytes = this.heldBytes;
    if (bytes > 0) {
      this.heldBytes = 0;
      this.giveBack(bytes);
    }
  }
}

interface Waiter {
  readonly bytes: number;
  readonly grant: (grant: TailQueueGrant) => void;
}

/**
 * A byte budget shared by all tails of a server.
 *
 * Waiting is first come, first served: a reservation is granted only when every earlier one has
 * been, so a tail asking for a full message is never overtaken forever by tails asking for less.
 * A reservation larger than the whole budget is granted when nothing else is held, so that one
 * oversized message still goes out, alone: the bytes held never exceed
 * `max(limitBytes, largest single reservation)`.
 */
export class TailQueueBudget {
  private used = 0;
  private maxUsed = 0;
  private readonly waiters: Waiter[] = [];

  /** @throws RangeError when `limitBytes` is not a positive integer. */
  constructor(readonly limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0) {
      throw new RangeError(`limitBytes must be a positive integer, got ${String(limitBytes)}`);
    }
  }

  /** Bytes held now, by queued messages and by reads in progress. */
  get usedBytes(): number {
    return this.used;
  }

  /** The most bytes ever held at once. */
  get maxUsedBytes(): number {
    return this.maxUsed;
  }

  /** Reservations waiting for bytes to come back, now. */
  get waitingCount(): number {
    return this.waiters.length;
  }

  /** True when a reservation of `bytes` would be granted at once (nobody waits, and it fits). */
  hasRoomFor(bytes: number): boolean {
    return this.waiters.length === 0 && this.fits(bytes);
  }

  /**
   * Reserves `bytes`, waiting in line while the budget cannot hold them. Resolves with the grant,
   * or with `undefined` when `signal` aborts first (the place in line is then given up, and those
   * behind it move up).
   *
   * @throws RangeError when `bytes` is not a positive integer.
   */
  reserve(bytes: number, signal: AbortSignal): Promise<TailQueueGrant | undefined> {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) {
      throw new RangeError(`bytes must be a positive integer, got ${String(bytes)}`);
    }
    if (signal.aborted) {
      return Promise.resolve(undefined);
    }
    if (this.hasRoomFor(bytes)) {
      return Promise.resolve(this.take(bytes));
    }
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) {
          this.waiters.splice(index, 1);
          resolve(undefined);
          // The one that left may have been first in line, holding back smaller reservations.
          this.grantWaiters();
        }
      };
      const waiter: Waiter = {
        bytes,
        grant: (grant) => {
          signal.removeEventListener('abort', onAbort);
          resolve(grant);
        },
      };
      this.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limitBytes;
  }

  private take(bytes: number): TailQueueGrant {
    this.used += bytes;
    this.maxUsed = Math.max(this.maxUsed, this.used);
    return new TailQueueGrant(bytes, (returned) => this.giveBack(returned));
  }

  private giveBack(bytes: number): void {
    this.used -= bytes;
    this.grantWaiters();
  }

  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const waiter = this.waiters.shift()!;
      waiter.grant(this.take(waiter.bytes));
    }
  }
}
