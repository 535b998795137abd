/**
 * Runs kill9-child.ts as a child process and collects what it prints, killing it with SIGKILL the
 * moment the caller says so: the parent side of kill9.test.ts and power-cut.test.ts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SyncPolicy } from '../../src/index.js';
import type { AckLine, RejectLine, StoppedLine } from './kill9-records.js';

const CHILD = fileURLToPath(new URL('./kill9-child.js', import.meta.url));

/** Everything one child printed, and how it ended. */
export interface ChildRun {
  readonly acks: AckLine[];
  readonly rejects: RejectLine[];
  /** Set once the child said that every writer stopped on a rejection. */
  stopped: StoppedLine | undefined;
  /** The log's next offset when the child opened it; -1 until the child said it is ready. */
  nextOffsetAtStart: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What to run and when to kill it. */
export interface ChildOptions {
  readonly dir: string;
  readonly round: number;
  readonly seed: number;
  readonly syncPolicy?: SyncPolicy | undefined;
  readonly syncIntervalMs?: number | undefined;
  /** Asked after every line the child printed (once it is ready): true kills it at once. */
  readonly shouldKill: (run: ChildRun) => boolean;
}

/** Runs one child until `shouldKill` says so (or it ends by itself), and collects every line it printed. */
export async function runKill9Child(options: ChildOptions): Promise<ChildRun> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WALD_KILL9_DIR: options.dir,
    WALD_KILL9_ROUND: String(options.round),
    WALD_KILL9_SEED: String(options.seed),
    WALD_KILL9_SYNC_POLICY: options.syncPolicy ?? 'always',
  };
  if (options.syncIntervalMs !== undefined) env['WALD_KILL9_SYNC_INTERVAL_MS'] = String(options.syncIntervalMs);
  const child = spawn(process.execPath, [CHILD], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const run: ChildRun = { acks: [], rejects: [], stopped: undefined, nextOffsetAtStart: -1, code: null, signal: null };
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      const message = JSON.parse(line) as Partial<AckLine & RejectLine & StoppedLine> & { ready?: boolean; nextOffset?: number };
      if (message.ready === true) run.nextOffsetAtStart = message.nextOffset ?? -1;
      else if (message.digest !== undefined) run.acks.push(message as AckLine);
      else if (message.rejected !== undefined) run.rejects.push(message as RejectLine);
      else if (message.stopped === true) run.stopped = message as StoppedLine;
      if (run.nextOffsetAtStart >= 0 && options.shouldKill(run)) kill();
    }
  } finally {
    kill();
  }
  [run.code, run.signal] = await closed;
  return run;
}
