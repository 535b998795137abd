import type { Deadline } from '@grpc/grpc-js';
import type { AppendResult } from '../../engine/types.js';
import { WalError } from '../../errors.js';
import { invalidArgument } from '../request-fields.js';
import type { FollowerRegistry } from './follower-registry.js';

/**
 * How long before the call's deadline an append stops waiting for its followers: grpc-js ends a
 * call at its deadline with a bare DEADLINE_EXCEEDED (and the client's own timer fires then too),
 * so `WAL_REPLICAS_TIMEOUT`, with its counts, must be sent early enough to reach the client. 50 ms
 * proved too little on a loaded machine (the client's timer won); a fifth of the deadline caps it.
 */
export const REPLICAS_DEADLINE_MARGIN_MS = 500;

/**
 * Synchronous replication of appends (`min_replicas`): the check of the asked count against
 * `max_min_replicas`, and the wait, after the append is durable here, until that many followers
 * report it durable (ReportFollower), bounded by the call's deadline or
 * `replication.min_replicas_timeout_ms`. Woken by the followers' reports; nothing polls.
 */
export class ReplicaAcks {
  constructor(
    private readonly followers: FollowerRegistry,
    /** `max_min_replicas`. */
    private readonly maxMinReplicas: number,
    /** `replication.min_replicas_timeout_ms`: the wait of a call without a deadline. */
    private readonly defaultTimeoutMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Checks `minReplicas` before anything is written.
   *
   * @throws WalError `WAL_INVALID_ARGUMENT` (field `min_replicas`, metadata `limit`) above `max_min_replicas`.
   */
  check(minReplicas: number): void {
    if (minReplicas > this.maxMinReplicas) {
      throw invalidArgument('min_replicas', `${minReplicas} followers asked for; at most ${this.maxMinReplicas} (max_min_replicas)`, {
        limit: this.maxMinReplicas,
        value: minReplicas,
      });
    }
  }

  /**
   * Resolves once `minReplicas` followers hold the batch of `result` durably (at once for 0).
   *
   * @throws WalError `WAL_REPLICAS_TIMEOUT` (details `minReplicas`, `replicas`, `firstOffset`,
   *   `lastOffset`) when they do not by `deadline` less {@link REPLICAS_DEADLINE_MARGIN_MS} (no
   *   deadline: `replication.min_replicas_timeout_ms` from now), or when `signal` aborts (the client
   *   went away; the error then reaches no one). The records stay in the log either way.
   */
  async await(result: AppendResult, minReplicas: number, deadline: Deadline, signal?: AbortSignal): Promise<void> {
    if (minReplicas === 0) return;
    const waitMs = this.waitMs(deadline);
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), waitMs);
    const onAbort = (): void => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) stop.abort();
    let replicas: number;
    try {
      replicas = await this.followers.waitForReplicas(result.lastOffset, minReplicas, stop.signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    if (replicas >= minReplicas) return;
    throw new WalError(
      'WAL_REPLICAS_TIMEOUT',
      `offsets ${result.firstOffset} to ${result.lastOffset} are durable here but ${replicas} of the ${minReplicas} followers asked for reported them in time; the records stay in the log`,
      { minReplicas, replicas, firstOffset: result.firstOffset, lastOffset: result.lastOffset },
    );
  }

  /** How long to wait from now: until shortly before `deadline`, or the configured default without one. */
  private waitMs(deadline: Deadline): number {
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    if (!Number.isFinite(at)) return this.defaultTimeoutMs;
    const left = at - this.clock();
    // A short deadline keeps most of its time: the margin is at most a fifth of what is left.
    return Math.max(0, left - Math.min(REPLICAS_DEADLINE_MARGIN_MS, Math.floor(left / 5)));
  }
}
