/**
 * The server process of the service benchmark, started by `server-process.ts`:
 *
 * ```sh
 * node dist/scripts/bench/bench-server-child.js wald DATA_DIR   # a WaldServer, `always` durability
 * node dist/scripts/bench/bench-server-child.js wald DATA_DIR '{"tlsCert":...,"tlsKey":...,"authFile":...,"metricsListen":...}'
 *                                                              # the same with server options (TLS, tokens, metrics)
 * node dist/scripts/bench/bench-server-child.js noop            # the no-op WalService
 * ```
 *
 * It listens on 127.0.0.1 (a free port), prints one line `{"port":N}` on stdout (with
 * `"metricsPort":M` when the options turned its metrics listener on, on a free port too), and stops
 * gracefully on SIGTERM or when its stdin closes (so that it never outlives the benchmark that
 * started it); SIGINT ends it at once. Logs (warnings and errors only) go to stderr.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { walServiceDefinition } from '../../src/server/wal-service-definition.js';
import { SERVER_DEFAULTS, type ServerOptions } from '../../src/server/server-options.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { createNoopWalService } from './noop-wal-service.js';

const LISTEN = '127.0.0.1:0';
/** How long the no-op server waits for calls to finish when stopping. */
const NOOP_SHUTDOWN_GRACE_MS = 2000;

interface Started {
  readonly port: number;
  readonly metricsPort?: number | undefined;
  stop(): Promise<void>;
}

async function startWald(dir: string, options: ServerOptions): Promise<Started> {
  const logger = pino({ name: 'wald-bench', level: 'warn' }, pino.destination({ dest: 2, sync: true }));
  const { server } = await WaldServer.open({ dir, syncPolicy: 'always' }, { ...options, listen: LISTEN }, logger);
  const port = await server.start();
  return { port, metricsPort: server.metricsPort, stop: () => server.stop() };
}

async function startNoop(): Promise<Started> {
  // The transport settings of a WaldServer with default options, so that only the handlers differ.
  const server = new Server({
    'grpc.max_receive_message_length': SERVER_DEFAULTS.maxReceiveMessageBytes,
    'grpc.max_send_message_length': SERVER_DEFAULTS.maxSendMessageBytes,
    'grpc.keepalive_time_ms': SERVER_DEFAULTS.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': SERVER_DEFAULTS.keepaliveTimeoutMs,
  });
  server.addService(walServiceDefinition, createNoopWalService());
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(LISTEN, ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  return {
    port,
    stop: async () => {
      const timer = setTimeout(() => server.forceShutdown(), NOOP_SHUTDOWN_GRACE_MS);
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      clearTimeout(timer);
    },
  };
}

async function main(): Promise<void> {
  const [kind, dir, options] = process.argv.slice(2);
  let started: Started;
  if (kind === 'wald' && dir !== undefined) started = await startWald(dir, options === undefined ? {} : (JSON.parse(options) as ServerOptions));
  else if (kind === 'noop') started = await startNoop();
  else throw new RangeError('usage: bench-server-child.js wald DATA_DIR [OPTIONS_JSON] | noop');
  let stopping: Promise<void> | undefined;
  const stop = (): void => {
    stopping ??= started.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  // Ctrl-C reaches the whole process group: the benchmark is being abandoned and removes the data
  // directory itself, so there is nothing to stop gracefully.
  process.on('SIGINT', () => process.exit(130));
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ port: started.port, metricsPort: started.metricsPort }) + '\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
