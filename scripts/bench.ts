/**
 * `npm run bench [-- engine|service|state|security|keys|metrics|compare|compaction|replay|txn|replication|python|all] [--json]`: runs the named parts of the benchmark (default
 * all) and prints each as a Markdown table. With `--json` the tables go to stderr and stdout gets
 * one JSON document with every figure. Settings come from `WALD_BENCH_*` variables (see
 * `scripts/bench/bench-config.ts`). Files go to `./bench-tmp/`, which is removed at the end.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveBenchConfig } from './bench/bench-config.js';
import type { BenchPart, BenchPartResult } from './bench/bench-part.js';
import { formatPart } from './bench/bench-table.js';
import { describeMachine, isTmpfs, machineLoad } from './bench/machine.js';
import { runCompactionBench } from './bench-compaction.js';
import { runCompareBench } from './bench-compare.js';
import { runEngineBench } from './bench-engine.js';
import { runSecurityBench } from './bench-security.js';
import { runKeyCompactionBench } from './bench-key-compaction.js';
import { runMetricsBench } from './bench-metrics.js';
import { runPythonBench } from './bench-python.js';
import { runReplayBench } from './bench-replay.js';
import { runReplicationBench } from './bench-replication.js';
import { runServiceBench } from './bench-service.js';
import { runStateBench } from './bench-state.js';
import { runTxnBench } from './bench-txn.js';

/** The parts, by name, in the order `all` runs them. */
const PARTS: Readonly<Record<string, BenchPart>> = {
  engine: runEngineBench,
  service: runServiceBench,
  state: runStateBench,
  security: runSecurityBench,
  keys: runKeyCompactionBench,
  metrics: runMetricsBench,
  compare: runCompareBench,
  compaction: runCompactionBench,
  replay: runReplayBench,
  txn: runTxnBench,
  replication: runReplicationBench,
  python: runPythonBench,
};

const USAGE = `usage: node dist/scripts/bench.js [${[...Object.keys(PARTS), 'all'].join('|')}] [--json]`;

function parseArgs(argv: readonly string[]): { parts: string[]; json: boolean } {
  let json = false;
  const names: string[] = [];
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else names.push(arg);
  }
  const parts = names.length === 0 || names.includes('all') ? Object.keys(PARTS) : names;
  for (const name of parts) {
    if (PARTS[name] === undefined) throw new RangeError(`unknown benchmark part ${JSON.stringify(name)}; ${USAGE}`);
  }
  return { parts, json };
}

async function main(): Promise<void> {
  const { parts, json } = parseArgs(process.argv.slice(2));
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
  const scratchRoot = join(repoRoot, 'bench-tmp');
  const scratchDir = join(scratchRoot, `run-${process.pid}`);
  fs.mkdirSync(scratchDir, { recursive: true });
  const cleanUp = (): void => {
    fs.rmSync(scratchDir, { recursive: true, force: true });
    if (fs.existsSync(scratchRoot) && fs.readdirSync(scratchRoot).length === 0) fs.rmdirSync(scratchRoot);
  };
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  const out = json ? (text: string) => process.stderr.write(text + '\n') : (text: string) => process.stdout.write(text + '\n');
  const progress = (message: string): void => {
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message} (${machineLoad()})\n`);
  };
  try {
    if (isTmpfs(scratchDir)) throw new Error(`${scratchDir} is on tmpfs: fsync would cost nothing there`);
    const config = resolveBenchConfig(process.env, scratchDir, progress);
    const machine = describeMachine(scratchDir);
    out(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.kernel}; node ${machine.node}; scratch on ${machine.scratchFs}`);
    const results: BenchPartResult[] = [];
    for (const name of parts) {
      const loadBefore = machineLoad();
      const result = await PARTS[name]!(config);
      results.push(result);
      out('\n' + formatPart(result));
      out(`- machine ${loadBefore} before the part, ${machineLoad()} after it`);
    }
    if (json) {
      const { progress: _, ...settings } = config;
      process.stdout.write(JSON.stringify({ date: new Date().toISOString(), machine, settings, results }, null, 2) + '\n');
    }
  } finally {
    cleanUp();
  }
}

main().catch((error: unknown) => {
  // A bad part name or setting is the caller's mistake: its message is enough.
  console.error(error instanceof RangeError ? error.message : error);
  process.exitCode = error instanceof RangeError ? 2 : 1;
});
