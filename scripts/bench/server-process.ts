/**
 * Starting and stopping the server processes of the service benchmark (the entry point they run
 * is `bench-server-child.ts`), so that client and server never share a CPU's event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerOptions } from '../../src/server/server-options.js';

/**
 * What a server process serves: wald over a data directory (with server options such as TLS files
 * or an auth file, which must survive JSON), or the no-op baseline.
 */
export type ServerKind = { readonly kind: 'wald'; readonly dir: string; readonly options?: ServerOptions } | { readonly kind: 'noop' };

/** A running server process. */
export interface ServerProcess {
  /** `127.0.0.1:port`. */
  readonly address: string;
  /** The port of its metrics listener, when it has one. */
  readonly metricsPort: number | undefined;
  /** The child's process id (for its CPU time). */
  readonly pid: number;
  /** Stops it gracefully (SIGTERM), or kills it after {@link STOP_TIMEOUT_MS}; idempotent. */
  stop(): Promise<void>;
}

const CHILD_SCRIPT = fileURLToPath(new URL('./bench-server-child.js', import.meta.url));
/** How long a child may take to open its log and print its port. */
const START_TIMEOUT_MS = 60_000;
/** How long a child may take to stop: above wald's 5 s shutdown grace period plus the final sync. */
const STOP_TIMEOUT_MS = 15_000;

/** Children still running, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>();
let isExitHookInstalled = false;

function installExitHook(): void {
  if (isExitHookInstalled) return;
  isExitHookInstalled = true;
  // An exit that skipped stop() is an abandoned run whose data directories are being removed:
  // a graceful shutdown would only fail on the missing files.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

async function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, false);
  });
  try {
    return await Promise.race([once(child, 'exit').then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readPort(child: ChildProcess): Promise<{ port: number; metricsPort: number | undefined }> {
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<{ port: number; metricsPort: number | undefined }>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the server process did not report its port within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.once('exit', (code, signal) => reject(new Error(`the server process exited before listening (code ${code}, signal ${signal})`)));
      lines.once('line', (line) => {
        const { port, metricsPort } = JSON.parse(line) as { port?: unknown; metricsPort?: unknown };
        if (typeof port === 'number') resolve({ port, metricsPort: typeof metricsPort === 'number' ? metricsPort : undefined });
        else reject(new Error(`unexpected first line from the server process: ${line}`));
      });
    });
  } finally {
    clearTimeout(timer);
    lines.close();
  }
}

/**
 * Spawns a server process (`node [nodeArgs] bench-server-child.js ...`) and resolves once it
 * listens. Its stderr is this process's stderr.
 *
 * Rejects when the child exits or stays silent for {@link START_TIMEOUT_MS}; the child is killed then.
 */
export async function startServerProcess(server: ServerKind, nodeArgs: readonly string[]): Promise<ServerProcess> {
  installExitHook();
  const args = server.kind === 'noop' ? ['noop'] : ['wald', server.dir, ...(server.options === undefined ? [] : [JSON.stringify(server.options)])];
  const child = spawn(process.execPath, [...nodeArgs, CHILD_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stopped: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    if (!(await exited(child, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await exited(child, STOP_TIMEOUT_MS);
    }
  };
  try {
    const { port, metricsPort } = await readPort(child);
    // The child's later output (none is expected) must not fill the pipe and block it.
    child.stdout!.resume();
    return {
      address: `127.0.0.1:${port}`,
      metricsPort,
      pid: child.pid!,
      stop: () => (stopped ??= stop()),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
