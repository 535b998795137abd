/** Settings of one benchmark run, read from the environment so that a quick run is possible. */
export interface BenchConfig {
  /** Repetitions of every measurement (`WALD_BENCH_RUNS`, default 3). */
  readonly runs: number;
  /** Time bound of one timed measurement (`WALD_BENCH_RUN_MS`, default 2000). */
  readonly runMs: number;
  /** JIT warm-up before the first measurement (`WALD_BENCH_WARMUP_MS`, default 2000). */
  readonly warmupMs: number;
  /** Warm-up of each case before its measurements (`WALD_BENCH_CASE_WARMUP_MS`, default 300). */
  readonly caseWarmupMs: number;
  /** Records read back in (e) (`WALD_BENCH_READ_RECORDS`, default 1,000,000). */
  readonly readRecords: number;
  /** Size of the log whose open time (f) measures (`WALD_BENCH_LOG_BYTES`, default 1 GiB). */
  readonly logBytes: number;
  /** Records each TailWal catch-up of the service part delivers (`WALD_BENCH_TAIL_RECORDS`, default 1,000,000). */
  readonly tailRecords: number;
  /** Appends per append-to-subscriber latency run of the service part (`WALD_BENCH_LATENCY_APPENDS`, default 2000). */
  readonly latencyAppends: number;
  /**
   * Extra `node` arguments of the service part's server processes, split on spaces
   * (`WALD_BENCH_SERVER_NODE_ARGS`, default none; e.g. `--cpu-prof --cpu-prof-dir=prof`).
   */
  readonly serverNodeArgs: readonly string[];
  /** Where the parts put their files; removed at the end. */
  readonly scratchDir: string;
  /** Progress messages (to stderr). */
  readonly progress: (message: string) => void;
}

/** Defaults: 3 runs of 2 s after 2 s of warm-up, 1M records read and tailed, a 1 GiB log, 2000 latency samples. */
export const BENCH_DEFAULTS = Object.freeze({
  runs: 3,
  runMs: 2000,
  warmupMs: 2000,
  caseWarmupMs: 300,
  readRecords: 1_000_000,
  logBytes: 1024 * 1024 * 1024,
  tailRecords: 1_000_000,
  latencyAppends: 2000,
});

const ENV_KEYS = {
  runs: 'WALD_BENCH_RUNS',
  runMs: 'WALD_BENCH_RUN_MS',
  warmupMs: 'WALD_BENCH_WARMUP_MS',
  caseWarmupMs: 'WALD_BENCH_CASE_WARMUP_MS',
  readRecords: 'WALD_BENCH_READ_RECORDS',
  logBytes: 'WALD_BENCH_LOG_BYTES',
  tailRecords: 'WALD_BENCH_TAIL_RECORDS',
  latencyAppends: 'WALD_BENCH_LATENCY_APPENDS',
} as const satisfies Record<keyof typeof BENCH_DEFAULTS, string>;

/**
 * Resolves the settings from `env`, naming the variable in the error.
 *
 * Throws `RangeError` when a variable is not a positive integer (`WALD_BENCH_WARMUP_MS` and
 * `WALD_BENCH_CASE_WARMUP_MS` may be 0).
 */
export function resolveBenchConfig(env: NodeJS.ProcessEnv, scratchDir: string, progress: (message: string) => void): BenchConfig {
  const values: Record<keyof typeof BENCH_DEFAULTS, number> = { ...BENCH_DEFAULTS };
  for (const key of Object.keys(ENV_KEYS) as (keyof typeof ENV_KEYS)[]) {
    const text = env[ENV_KEYS[key]];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    const minimum = key === 'warmupMs' || key === 'caseWarmupMs' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < minimum) {
      throw new RangeError(`${ENV_KEYS[key]} must be an integer >= ${minimum}, got ${JSON.stringify(text)}`);
    }
    values[key] = value;
  }
  const serverNodeArgs = (env.WALD_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  return { ...values, serverNodeArgs, scratchDir, progress };
}
