import type { HealthImplementation } from 'grpc-health-check';

/** The parts of grpc-health-check 2.1.0's implementation that its watchers go through (private in its typings). */
interface HealthWatchers {
  readonly watchers: Map<string, Set<unknown>>;
  removeWatcher(service: string, watcher: unknown): void;
}

/**
 * Makes `health` forget a service name once its last `Watch` is gone. grpc-health-check 2.1.0
 * keeps a map entry for every name a `Watch` ever asked for (cancelling empties the entry's set,
 * never the entry): with health open to callers without a token, unique names of up to
 * `max_receive_message_bytes` each grew the heap by about 1 MB per call, for good, until the
 * process ran out of memory (measured in review: 336 -> 965 MB over 600 calls). The library has no
 * option for it, so its `removeWatcher` is wrapped on the instance (its handlers call it through
 * `this`).
 */
export function forgetUnwatchedServices(health: HealthImplementation): void {
  const inner = health as unknown as HealthWatchers;
  const remove = inner.removeWatcher.bind(inner);
  inner.removeWatcher = (service: string, watcher: unknown): void => {
    remove(service, watcher);
    if (inner.watchers.get(service)?.size === 0) inner.watchers.delete(service);
  };
}

/** How many service names `health` holds watchers for (tests). */
export function watchedServiceCount(health: HealthImplementation): number {
  return (health as unknown as HealthWatchers).watchers.size;
}
