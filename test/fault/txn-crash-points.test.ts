/**
 * A power cut at every disk operation of a transactional workload (sync policy `always`): PREPAREs,
 * COMMITs and ABORTs interleaved with plain writes, a snapshot taken while a transaction is in
 * doubt, and a batch holding a PREPARE with its COMMIT; the unsynced bytes lost, kept as a prefix,
 * or kept page by page in any order. Afterwards the view equals the model after every acknowledged
 * step, or after the one the crash cut (whose batch is in the log whole or not at all): never
 * half a transaction, an in-doubt transaction is reported exactly, and it can still be committed.
 *
 * Randomised (which unsynced bytes survive): prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeTxnWrites, type TxnWrite } from '../../src/codec/txn-writes.js';
import { Wal } from '../../src/engine/wal.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { FakeClock } from '../support/fake-clock.js';
import { MemDisk, type UnsyncedSurvival } from '../support/mem-disk.js';
import { random, testSeed } from '../support/seed.js';

const DIR = '/data';
const KEYS = ['a', 'b', 'c', 'd'];
const b = (text: string): Buffer => Buffer.from(text);
const put = (key: string, value: string): TxnWrite => ({ op: 'put', key: b(key), value: b(value) });

/** What the model holds after a step: the keys, and the in-doubt transactions by id. */
interface Snapshot {
  readonly keys: ReadonlyMap<string, string>;
  readonly inDoubt: readonly string[];
}

type Step = (keeper: StateKeeper) => Promise<unknown>;

/** The workload and the model after each of its steps (index 0: before any). */
function workload(): { steps: Step[]; after: Snapshot[] } {
  const keys = new Map<string, string>();
  const inDoubt = new Set<string>();
  const txns = new Map<string, TxnWrite[]>();
  const after: Snapshot[] = [{ keys: new Map(), inDoubt: [] }];
  const steps: Step[] = [];
  const record = () => after.push({ keys: new Map(keys), inDoubt: [...inDoubt] });
  const plain = (key: string, value: string) => {
    steps.push((keeper) => keeper.append([{ key: b(key), value: b(value) }]));
    keys.set(key, value);
    record();
  };
  const prepare = (txn: string, writes: TxnWrite[]) => {
    steps.push((keeper) => keeper.prepare(b(txn), writes));
    txns.set(txn, writes);
    inDoubt.add(txn);
    record();
  };
  const apply = (writes: readonly TxnWrite[]) => {
    for (const write of writes) {
      if (write.op === 'put') keys.set(Buffer.from(write.key).toString(), Buffer.from(write.value).toString());
      else keys.delete(Buffer.from(write.key).toString());
    }
  };
  const commit = (txn: string) => {
    steps.push((keeper) => keeper.commit(b(txn)));
    apply(txns.get(txn)!);
    inDoubt.delete(txn);
    record();
  };
  const abort = (txn: string) => {
    steps.push((keeper) => keeper.abort(b(txn), 'crash test'));
    inDoubt.delete(txn);
    record();
  };
  plain('a', '0');
  prepare('t1', [put('a', '1'), put('b', '1'), { op: 'delete', key: b('c'), value: Buffer.alloc(0) }]);
  plain('c', '0');
  commit('t1');
  prepare('t2', [put('c', '2'), put('d', '2')]);
  steps.push((keeper) => keeper.createSnapshot());
  record();
  prepare('t3', [put('a', '3')]);
  plain('b', 'x');
  commit('t2');
  abort('t3');
  const t4 = [put('d', '4'), put('a', '4')];
  steps.push((keeper) =>
    keeper.append([
      { type: 'prepare', key: b('t4'), value: encodeTxnWrites(t4) },
      { type: 'commit', key: b('t4'), value: Buffer.alloc(0) },
    ]),
  );
  apply(t4);
  record();
  prepare('t5', [put('b', '5')]);
  return { steps, after };
}

async function open(disk: MemDisk, clock: FakeClock) {
  const storage = disk.mount();
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, syncPolicy: 'always', clock: clock.now, onWarning: () => {} });
  try {
    const { keeper, report } = await StateKeeper.open({ wal, storage, clock: clock.now });
    return { wal, keeper, report };
  } catch (error) {
    await wal.close();
    throw error;
  }
}

function survivalFor(mode: number, next: () => number): UnsyncedSurvival | undefined {
  if (mode === 0) return undefined;
  if (mode === 1) return (size) => Math.floor(next() * (size + 1));
  return { randomPages: next };
}

async function observed(keeper: StateKeeper): Promise<Snapshot> {
  const keys = new Map<string, string>();
  for (const key of KEYS) {
    const entry = await keeper.get(b(key));
    if (entry !== undefined) keys.set(key, entry.value.toString());
  }
  const inDoubt = keeper.inDoubtTransactions().map((t) => Buffer.from(t.txnIdBase64, 'base64').toString());
  return { keys, inDoubt };
}

describe('transactions under power cuts', { timeout: 600_000 }, () => {
  test('a crash at any disk operation between PREPARE and COMMIT loses no acknowledged step and never shows half a transaction', async () => {
    const next = random(testSeed('transaction crash points'));
    const { steps, after } = workload();
    const counting = new MemDisk();
    const clock = new FakeClock();
    const first = await open(counting, clock);
    const opsBefore = counting.ops;
    for (const step of steps) await step(first.keeper);
    const operations = counting.ops - opsBefore;
    await first.keeper.close();
    await first.wal.close();
    assert.ok(operations >= steps.length, `${operations} operations`);
    const outcomes = new Set<string>();
    for (let op = 1; op <= operations + 1; op++) {
      for (let mode = 0; mode < 3; mode++) {
        const where = `operation ${op}, mode ${mode}`;
        const disk = new MemDisk();
        const run = await open(disk, clock);
        disk.crashAt(op, survivalFor(mode, next));
        let acknowledged = 0;
        try {
          for (const step of steps) {
            await step(run.keeper);
            acknowledged++;
          }
          disk.crash(survivalFor(mode, next));
        } catch {
          // The crash: the step under way may or may not have reached the disk.
        }
        await run.keeper.close().catch(() => undefined);
        await run.wal.close().catch(() => undefined);
        const again = await open(disk, clock);
        try {
          const seen = await observed(again.keeper);
          const candidates = [after[acknowledged]!, after[Math.min(acknowledged + 1, after.length - 1)]!];
          const match = candidates.findIndex((c) => JSON.stringify([...c.keys].sort()) === JSON.stringify([...seen.keys].sort()) && JSON.stringify(c.inDoubt) === JSON.stringify(seen.inDoubt));
          assert.ok(match >= 0, `${where}: ${JSON.stringify({ keys: [...seen.keys], inDoubt: seen.inDoubt })} after ${acknowledged} acknowledged steps`);
          assert.equal(again.report.inDoubtCount, seen.inDoubt.length, `${where}: the recovery report`);
          outcomes.add(`${acknowledged + match}`);
          // Whatever is in doubt can still end, and the view applies it whole.
          for (const txn of seen.inDoubt) await again.keeper.commit(b(txn));
          await again.keeper.caughtUp();
          assert.equal(again.keeper.inDoubtCount, 0, `${where}: every in-doubt transaction committed`);
        } finally {
          await again.keeper.close();
          await again.wal.close();
        }
      }
    }
    // The crashes fell between every pair of steps, PREPAREs and COMMITs included.
    assert.equal(outcomes.size, after.length, `outcomes seen: ${[...outcomes].sort().join(',')}`);
  });
});
