/**
 * The delay before retry `attempt` (0-based): exponential from `initialMs`, capped at `maxMs`, with
 * jitter (a uniform draw between half the exponential step and all of it) so that clients a restart
 * disconnected together do not all come back in the same millisecond. `random` is injectable for
 * tests.
 */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(step * (0.5 + random() / 2)));
}
