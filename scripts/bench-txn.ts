/**
 * The transactions part of `npm run bench` (`txn`), in process (engine and key-value view, no
 * gRPC), sync policy `always`:
 *
 * - transactions of 10 writes (16-byte keys, 100-byte values): `StateKeeper.prepare` then
 *   `commit`, each awaited, sequential and from 64 concurrent writers (transactions/s), beside
 *   plain appends of the same bytes and the same view work: the 10 writes appended as one batch of
 *   10 PUTs, then a keyed PUT of the transaction id (the COMMIT's record), each awaited, through
 *   the same `StateKeeper.append`: what the rules, the PREPARE's payload and the apply at the
 *   COMMIT add;
 * - key compaction of a log of 100,000 transactions (10 writes of 16-byte values over 10,000 keys,
 *   a quarter aborted), target under 1 s.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeTxnWrites, type TxnWrite } from '../src/codec/txn-writes.js';
import { NodeStorage, Wal } from '../src/index.js';
import { compactKeys, type KeyCompactionResult } from '../src/state/key-compaction.js';
import { StateKeeper } from '../src/state/state-keeper.js';
import type { BenchConfig } from './bench/bench-config.js';
import { makeRow, type BenchPartResult } from './bench/bench-part.js';
import { summarize } from './bench/summary.js';

const WRITES_PER_TXN = 10;
const VALUE_BYTES = 100;
const CONCURRENCY = 64;
const KEYS = 100_000;
const COMPACTION_TXNS = 100_000;
const COMPACTION_KEYS = 10_000;
const COMPACTION_VALUE_BYTES = 16;
const SEGMENT_SIZE_BYTES = 8 * 1024 * 1024;

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  close(): Promise<void>;
}

async function open(dir: string, syncPolicy: 'always' | 'none'): Promise<Opened> {
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, syncPolicy, segmentSizeBytes: SEGMENT_SIZE_BYTES });
  const { keeper } = await StateKeeper.open({ wal, storage, options: { txnMaxEnded: 2 * COMPACTION_TXNS } });
  return {
    wal,
    keeper,
    async close() {
      await keeper.close();
      await wal.close();
    },
  };
}

function writesOf(txn: number, valueBytes: number, keys: number, value: Buffer): TxnWrite[] {
  const writes: TxnWrite[] = [];
  for (let i = 0; i < WRITES_PER_TXN; i++) {
    const key = Buffer.from(`key-${String((txn * 7919 + i * 104_729) % keys).padStart(12, '0')}`);
    writes.push({ op: 'put', key, value: value.subarray(0, valueBytes) });
  }
  return writes;
}

type Worker = () => Promise<unknown>;

/** Runs `work` for `runMs` from `concurrency` writers, each awaiting its own; returns items per second. */
async function rate(work: Worker, concurrency: number, runMs: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + runMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await work();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** Slices a run is cut into, alternating the two workloads, so that the load of the shared machine falls on both alike. */
const SLICE_MS = 250;

/**
 * Transactions/s of prepare + commit, and of the plain appends of the same bytes, per run: each
 * run alternates slices of {@link SLICE_MS} between the two (each on its own log, opened once),
 * and a figure is the items done over the time spent in its slices.
 */
async function measureThroughput(config: BenchConfig, concurrency: number, label: string): Promise<{ txn: number[]; plain: number[] }> {
  const value = randomBytes(VALUE_BYTES);
  const txnDir = join(config.scratchDir, `txn-${label}-txn`);
  const plainDir = join(config.scratchDir, `txn-${label}-plain`);
  const txnLog = await open(txnDir, 'always');
  const plainLog = await open(plainDir, 'always');
  // One counter per log for warm-up and runs: every transaction id is new.
  let nextTxn = 0;
  let nextPlain = 0;
  const txnWork: Worker = async () => {
    const n = nextTxn++;
    const id = Buffer.from(`txn-${n}`);
    await txnLog.keeper.prepare(id, writesOf(n, VALUE_BYTES, KEYS, value));
    await txnLog.keeper.commit(id);
  };
  const plainWork: Worker = async () => {
    const n = nextPlain++;
    await plainLog.keeper.append(writesOf(n, VALUE_BYTES, KEYS, value).map((write) => ({ key: write.key, value: write.value })));
    await plainLog.keeper.append([{ key: Buffer.from(`txn-${n}`), value: Buffer.alloc(0) }]);
  };
  const txn: number[] = [];
  const plain: number[] = [];
  try {
    await rate(txnWork, concurrency, Math.min(config.warmupMs, 500));
    await rate(plainWork, concurrency, Math.min(config.warmupMs, 500));
    const slices = Math.max(1, Math.round(config.runMs / SLICE_MS));
    for (let run = 0; run < config.runs; run++) {
      config.progress(`txn: ${label} ${run + 1}/${config.runs}`);
      const done = { txn: 0, plain: 0 };
      const spentMs = { txn: 0, plain: 0 };
      for (let slice = 0; slice < slices; slice++) {
        for (const kind of ['txn', 'plain'] as const) {
          const started = performance.now();
          const perSecond = await rate(kind === 'txn' ? txnWork : plainWork, concurrency, SLICE_MS);
          const ms = performance.now() - started;
          done[kind] += (perSecond * ms) / 1000;
          spentMs[kind] += ms;
        }
      }
      txn.push(done.txn / (spentMs.txn / 1000));
      plain.push(done.plain / (spentMs.plain / 1000));
    }
  } finally {
    await txnLog.close();
    await plainLog.close();
    fs.rmSync(txnDir, { recursive: true, force: true });
    fs.rmSync(plainDir, { recursive: true, force: true });
  }
  return { txn, plain };
}

/** Writes the log for key compaction: 100k transactions, a quarter aborted, in batches of PREPARE + end. */
async function writeCompactionLog(dir: string): Promise<void> {
  const opened = await open(dir, 'none');
  const value = randomBytes(COMPACTION_VALUE_BYTES);
  try {
    for (let n = 0; n < COMPACTION_TXNS; n += 100) {
      const pending: Promise<unknown>[] = [];
      for (let t = n; t < n + 100; t++) {
        const id = Buffer.from(`txn-${t}`);
        const isAborted = t % 4 === 3;
        pending.push(
          opened.keeper.append([
            { type: 'prepare', key: id, value: encodeTxnWrites(writesOf(t, COMPACTION_VALUE_BYTES, COMPACTION_KEYS, value)) },
            isAborted ? { type: 'abort', key: id, value: Buffer.from('bench') } : { type: 'commit', key: id, value: Buffer.alloc(0) },
          ]),
        );
      }
      await Promise.all(pending);
    }
    await opened.wal.sync();
    // Rolls the segment, so that every transaction lies in a sealed one (bounded: a segment is 8 MiB).
    const before = opened.wal.stats().segmentCount;
    for (let i = 0; i < 1000 && opened.wal.stats().segmentCount === before; i++) await opened.keeper.append([{ value: Buffer.alloc(64 * 1024) }]);
    await opened.keeper.caughtUp();
  } finally {
    await opened.close();
  }
}

async function compactCopy(template: string, dir: string, dryRun = false): Promise<KeyCompactionResult> {
  fs.cpSync(template, dir, { recursive: true });
  const opened = await open(dir, 'always');
  try {
    await opened.keeper.caughtUp();
    return await compactKeys(opened.keeper, opened.wal, { tombstoneRetentionMs: 0, dryRun });
  } finally {
    await opened.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the transactions part in `config.scratchDir`. */
export async function runTxnBench(config: BenchConfig): Promise<BenchPartResult> {
  const sequential = await measureThroughput(config, 1, 'sequential');
  const concurrent = await measureThroughput(config, CONCURRENCY, 'concurrent');
  const template = join(config.scratchDir, 'txn-compaction-template');
  config.progress(`txn: writing ${COMPACTION_TXNS} transactions`);
  await writeCompactionLog(template);
  const compactions: KeyCompactionResult[] = [];
  const dryRuns: KeyCompactionResult[] = [];
  for (let run = 0; run < config.runs; run++) {
    config.progress(`txn: key compaction ${run + 1}/${config.runs}`);
    compactions.push(await compactCopy(template, join(config.scratchDir, `txn-compaction-${run}`)));
    dryRuns.push(await compactCopy(template, join(config.scratchDir, `txn-compaction-dry-${run}`), true));
  }
  fs.rmSync(template, { recursive: true, force: true });
  const last = compactions[compactions.length - 1]!;
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
  const plainName = 'plain appends: the 10 writes as one batch of PUTs, then one keyed PUT';
  return {
    part: 'txn',
    setup: [
      `transactions of ${WRITES_PER_TXN} writes (16-byte keys, ${VALUE_BYTES}-byte values) over ${KEYS.toLocaleString('en-US')} keys: StateKeeper.prepare then commit, each awaited, sync policy always, in process (no gRPC)`,
      `baseline: the same 10 writes appended as one batch of 10 PUTs, then a keyed PUT of the transaction id (the COMMIT's record), each awaited, through StateKeeper.append: the same bytes, fsyncs and view work; each run alternates slices of 250 ms between the two, each on its own log`,
      `key compaction: ${COMPACTION_TXNS.toLocaleString('en-US')} transactions of ${WRITES_PER_TXN} writes of ${COMPACTION_VALUE_BYTES}-byte values over ${COMPACTION_KEYS.toLocaleString('en-US')} keys, a quarter aborted, each PREPARE with its end in one batch; compactKeys (threshold 20%) on a fresh copy, view rebuilt before the clock starts`,
    ],
    rows: [
      makeRow({ id: 't1', name: 'transactions, sequential (prepare + commit)', unit: 'transactions/s', wald: summarize(sequential.txn), baseline: { name: plainName, summary: summarize(sequential.plain) }, notes: ['two durable appends per transaction'] }),
      makeRow({ id: 't2', name: `transactions, ${CONCURRENCY} concurrent`, unit: 'transactions/s', wald: summarize(concurrent.txn), baseline: { name: plainName, summary: summarize(concurrent.plain) }, notes: ['group commit shares the fsyncs among the writers'] }),
      makeRow({
        id: 't3',
        name: `key compaction of ${COMPACTION_TXNS.toLocaleString('en-US')} transactions`,
        unit: 'ms',
        wald: summarize(compactions.map((r) => r.durationMs)),
        target: { kind: 'at-most', value: 1000 },
        notes: [
          `before ${mb(last.beforeSizeBytes)}, after ${mb(last.afterSizeBytes)}, freed ${mb(last.freedBytes)} (${last.reductionPercent.toFixed(1)}%)`,
          `${last.segmentsRewritten} of ${last.segmentsConsidered} segments rewritten, ${last.recordsDropped.toLocaleString('en-US')} of ${last.recordsConsidered.toLocaleString('en-US')} records dropped`,
        ],
      }),
      makeRow({
        id: 't4',
        name: `key compaction dry run of ${COMPACTION_TXNS.toLocaleString('en-US')} transactions (reading and judging only)`,
        unit: 'ms',
        wald: summarize(dryRuns.map((r) => r.durationMs)),
        notes: ['the same judging as t3 without the rewrite: what t3 costs beyond writing and syncing the new segments'],
      }),
    ],
  };
}
