/**
 * Runs the built `wald` command (dist/src/cli/main.js) as a child process, for the CLI tests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The bin entry, relative to this file once compiled (dist/test/support/). */
export const WALD_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** What a finished run printed and how it exited. */
export interface WaldRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runWald}. */
export interface RunOptions {
  /** Written to stdin, which is then closed. Without it stdin is closed at once. */
  readonly input?: string | Buffer | undefined;
  /** Environment of the child; default: this process's, without any `WALD_*` variable. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
}

/** This process's environment without `WALD_*` variables, so that tests are not configured by accident. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('WALD_')));
  return { ...env, ...extra };
}

/** Starts `wald ARGS...` and returns the child; stdout and stderr are pipes. */
export function spawnWald(args: readonly string[], options: RunOptions = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [WALD_MAIN, ...args], { env: options.env ?? cleanEnv(), cwd: options.cwd });
}

/**
 * Everything a child prints, as it arrives: stdout split into lines that tests can wait for, and
 * the final result once the child has exited.
 */
export class ChildOutput {
  /** Complete stdout lines so far. */
  readonly lines: string[] = [];
  /** Resolves when the child has exited and its pipes are closed. */
  readonly exited: Promise<WaldRun>;
  private stdout = '';
  private stderr = '';
  private partial = '';
  private isClosed = false;
  private readonly waiters: { matches: (line: string) => boolean; resolve: (line: string) => void; reject: (error: Error) => void }[] = [];

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = once(child, 'close').then(([code, signal]) => {
      this.isClosed = true;
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(new Error(`the child exited (code ${String(code)}) before the expected line; stdout: ${this.stdout} stderr: ${this.stderr}`));
      }
      return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout: this.stdout, stderr: this.stderr };
    });
  }

  private onStdout(chunk: string): void {
    this.stdout += chunk;
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const waiter = this.waiters[i]!;
        if (waiter.matches(line)) {
          this.waiters.splice(i, 1);
          waiter.resolve(line);
        }
      }
    }
  }

  /** Resolves with the first stdout line (already printed or still to come) that `matches` accepts. */
  waitForLine(matches: (line: string) => boolean): Promise<string> {
    const found = this.lines.find(matches);
    if (found !== undefined) return Promise.resolve(found);
    if (this.isClosed) return Promise.reject(new Error(`the child exited before the expected line; stdout: ${this.stdout}`));
    return new Promise((resolve, reject) => this.waiters.push({ matches, resolve, reject }));
  }
}

/** Runs `wald ARGS...` to completion. */
export async function runWald(args: readonly string[], options: RunOptions = {}): Promise<WaldRun> {
  const child = spawnWald(args, options);
  const output = new ChildOutput(child);
  child.stdin.end(options.input ?? '');
  return output.exited;
}

/** One JSON log line of `wald serve` (pino). */
export type LogLine = Record<string, unknown>;

/** A log line parsed, or undefined when the line is not JSON. */
export function parseLog(line: string): LogLine | undefined {
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}
