/**
 * The Python part of `npm run bench` (`npm run bench -- python`): single 100-byte durable appends
 * from Python, through the package `wald` (clients/python/: concurrent appends batched over one
 * AppendStream) against the generated stubs' unary `Append` (what a polyglot client gets), in the
 * same run and alternating, one sequential caller and 64 threads. The Python side is
 * `scripts/bench/python_appends.py`, run with Debian's `/usr/bin/python3` (python3-grpcio).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult, type BenchRow } from './bench/bench-part.js';
import { measurePair, type Measurement, type Runner } from './bench/runner.js';
import { startServerProcess } from './bench/server-process.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Debian's interpreter: a pyenv `python3` earlier on PATH does not see Debian's grpc modules. */
const PYTHON = '/usr/bin/python3';
const DRIVER = join(REPO_ROOT, 'scripts/bench/python_appends.py');
/** Threads of the concurrent rows, as the service part's 64 unary appends in flight. */
const CONCURRENT_THREADS = 64;
/** Most appends of one measurement. */
const MAX_RECORDS_PER_RUN = 1_000_000;

type Mode = 'client' | 'stubs';

/** One Python process appending through `mode`, driven one command per measurement. */
class PythonAppender implements Runner {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: Interface;
  private readonly answers: ((line: string) => void)[] = [];

  constructor(
    address: string,
    private readonly mode: Mode,
    private readonly threads: number,
  ) {
    this.child = spawn(PYTHON, [DRIVER, address], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONPATH: join(REPO_ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => this.answers.shift()?.(line));
  }

  async run(runMs: number): Promise<Measurement> {
    const answer = new Promise<string>((resolve, reject) => {
      this.answers.push(resolve);
      this.child.once('exit', (code) => reject(new Error(`${DRIVER} exited (code ${String(code)})`)));
    });
    this.child.stdin.write(JSON.stringify({ mode: this.mode, threads: this.threads, run_ms: runMs, max_records: MAX_RECORDS_PER_RUN }) + '\n');
    const { records, seconds } = JSON.parse(await answer) as { records: number; seconds: number };
    return { value: records / seconds, records };
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await exited;
    this.lines.close();
  }
}

/** Runs the Python rows. */
export async function runPythonBench(config: BenchConfig): Promise<BenchPartResult> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install -y python3-grpcio`);
  const server = await startServerProcess({ kind: 'wald', dir: join(config.scratchDir, 'python') }, config.serverNodeArgs);
  const rows: BenchRow[] = [];
  try {
    for (const [id, threads] of [
      ['p1', 1],
      ['p2', CONCURRENT_THREADS],
    ] as const) {
      const caller = threads === 1 ? '1 thread, sequential' : `${threads} threads`;
      config.progress(`python: ${id}, ${caller}`);
      const pair = await measurePair(config, new PythonAppender(server.address, 'client', threads), new PythonAppender(server.address, 'stubs', threads));
      rows.push(
        makeRow({
          id,
          name: `Python, 1 record per append, \`always\`, ${caller}: \`wald.Client.append\``,
          unit: 'records/s',
          wald: pair.wald,
          baseline: { name: 'the generated stubs, unary `Append`', summary: pair.baseline! },
        }),
      );
    }
  } finally {
    await server.stop();
  }
  return {
    part: 'python',
    rows,
    setup: [
      `one wald server process (sync_policy always); ${PYTHON} with Debian's python3-grpcio, one process per case, its channel kept across runs`,
      '100-byte records, one per append, from Python threads (the GIL: threads share one core for Python code)',
    ],
  };
}
