/**
 * A child process for the metrics test: opens, starts, scrapes and stops `WaldServer`s with metrics
 * on, one after the other, as a follower does after truncations and installs, then collects
 * garbage and prints how many of them are still reachable (`{"alive":N,"servers":M}`). Run with
 * `--expose-gc`: `node --expose-gc stopped-servers-child.js DATA_DIR`.
 */
import { pino, type Logger } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';

const SERVERS = 4;

/** One server's life; only a weak reference to it comes out (no frame of the caller holds it). */
async function runOne(dir: string, logger: Logger): Promise<WeakRef<WaldServer>> {
  const { server } = await WaldServer.open({ dir, preallocate: false }, { listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' }, logger);
  await server.start();
  await (await fetch(`http://127.0.0.1:${server.metricsPort!}/metrics`)).text();
  await server.stop();
  return new WeakRef(server);
}

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with --expose-gc');
  const stopped: WeakRef<WaldServer>[] = [];
  const logger = pino({ level: 'silent' });
  for (let i = 0; i < SERVERS; i++) stopped.push(await runOne(dir, logger));
  // deref() keeps its object alive to the end of the current job: each look comes after a
  // collection and a turn of the loop, never before the collection in the same job.
  const alive = (): number => stopped.filter((ref) => ref.deref() !== undefined).length;
  let count = SERVERS;
  // Bounded: a few collections.
  for (let round = 0; round < 20 && count > 0; round++) {
    collect();
    await new Promise((resolve) => setTimeout(resolve, 10));
    count = alive();
  }
  process.stdout.write(JSON.stringify({ alive: count, servers: SERVERS }) + '\n');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
