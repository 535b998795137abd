/**
 * Transactions against a model, with fast-check: random interleavings of plain PUTs and DELETEs,
 * PREPAREs, COMMITs and ABORTs (allowed or not by the rules), batches holding a PREPARE and its
 * COMMIT, reopens, full and incremental snapshots, compactions (segments deleted below a
 * snapshot) and key compactions (segments rewritten without redundant records). After every step
 * `Get` of every key equals the model (value and offset: the COMMIT's for a transaction's writes),
 * the in-doubt transactions are exactly the model's (ids and prepare offsets), and every refused
 * record is refused with WAL_TXN_STATE naming the model's state.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeTxnWrites, type TxnWrite } from '../../../src/codec/txn-writes.js';
import type { AppendRecord, WalRecord } from '../../../src/engine/types.js';
import { Wal } from '../../../src/engine/wal.js';
import { isWalError } from '../../../src/errors.js';
import { Compactor } from '../../../src/state/compactor.js';
import { compactKeys } from '../../../src/state/key-compaction.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import type { Storage } from '../../../src/storage/storage.js';
import { FakeClock } from '../../support/fake-clock.js';
import { MemDisk } from '../../support/mem-disk.js';
import { testSeed } from '../../support/seed.js';

const DIR = '/data';
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
const TXNS = ['t0', 't1', 't2', 't3', 't4', 't5'];

type Step =
  | { readonly kind: 'put'; readonly key: number; readonly value: number }
  | { readonly kind: 'delete'; readonly key: number }
  | { readonly kind: 'prepare'; readonly txn: number; readonly writes: readonly { readonly key: number; readonly value: number; readonly isDelete: boolean }[] }
  | { readonly kind: 'commit' | 'abort'; readonly txn: number }
  | { readonly kind: 'prepare+commit'; readonly txn: number; readonly key: number; readonly value: number }
  | { readonly kind: 'reopen' | 'snapshot' | 'incremental' | 'compact' | 'compact-keys' | 'filler' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.nat({ max: KEYS.length - 1 }), value: fc.nat({ max: 99 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat({ max: KEYS.length - 1 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('prepare' as const),
      txn: fc.nat({ max: TXNS.length - 1 }),
      writes: fc.array(fc.record({ key: fc.nat({ max: KEYS.length - 1 }), value: fc.nat({ max: 99 }), isDelete: fc.boolean() }), { maxLength: 4 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('commit' as const, 'abort' as const), txn: fc.nat({ max: TXNS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('prepare+commit' as const), txn: fc.nat({ max: TXNS.length - 1 }), key: fc.nat({ max: KEYS.length - 1 }), value: fc.nat({ max: 99 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('reopen' as const, 'snapshot' as const, 'incremental' as const, 'compact' as const, 'filler' as const) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'compact-keys' as const }) },
);

type TxnState = 'in_doubt' | 'committed' | 'aborted' | 'unknown';

/** The model: keys by name with value and offset; transactions by id. */
class Model {
  readonly keys = new Map<string, { value: string; offset: number }>();
  readonly txns = new Map<string, { state: TxnState; prepareOffset: number; writes: readonly TxnWrite[] }>();

  stateOf(txn: string): TxnState {
    return this.txns.get(txn)?.state ?? 'unknown';
  }

  commit(txn: string, offset: number): void {
    const entry = this.txns.get(txn)!;
    for (const write of entry.writes) {
      const key = Buffer.from(write.key).toString();
      if (write.op === 'put') this.keys.set(key, { value: Buffer.from(write.value).toString(), offset });
      else this.keys.delete(key);
    }
    this.txns.set(txn, { ...entry, state: 'committed' });
  }
}

interface Opened {
  readonly wal: Wal;
  readonly keeper: StateKeeper;
  readonly compactor: Compactor;
  readonly report: Awaited<ReturnType<typeof StateKeeper.open>>['report'];
  close(): Promise<void>;
}

async function open(storage: Storage, clock: FakeClock): Promise<Opened> {
  const { wal } = await Wal.open({ dir: DIR, storage, preallocate: false, segmentSizeBytes: 4096, indexIntervalBytes: 256, clock: clock.now, onWarning: () => {} });
  const { keeper, report } = await StateKeeper.open({ wal, storage, options: { tombstoneRetentionMs: 0 }, clock: clock.now });
  const compactor = new Compactor({ wal, state: keeper, storage, options: { ...STATE_OPTIONS.defaults.compaction, retentionMs: 0, keepSnapshots: 1 }, clock: clock.now });
  return {
    wal,
    keeper,
    compactor,
    report,
    async close() {
      await compactor.idle();
      await keeper.close();
      await wal.close();
    },
  };
}

async function assertMatches(opened: Opened, model: Model, label: string): Promise<void> {
  for (const key of KEYS) {
    const entry = await opened.keeper.get(Buffer.from(key));
    const expected = model.keys.get(key);
    assert.deepEqual(entry === undefined ? undefined : { value: entry.value.toString(), offset: entry.offset }, expected, `${label}: key ${key}`);
  }
  const inDoubt = (await opened.keeper.listInDoubt({ limit: 100 })).transactions.map((t) => [Buffer.from(t.txnIdBase64, 'base64').toString(), t.prepareOffset]);
  const expected = [...model.txns].filter(([, t]) => t.state === 'in_doubt').map(([id, t]) => [id, t.prepareOffset]);
  expected.sort((a, b) => (a[1] as number) - (b[1] as number));
  assert.deepEqual(inDoubt, expected, `${label}: in-doubt transactions`);
  for (const txn of TXNS) assert.equal(opened.keeper.txnState(Buffer.from(txn)), model.stateOf(txn), `${label}: state of ${txn}`);
}

async function expectRefused(promise: Promise<unknown>, state: TxnState, label: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isWalError(error, 'WAL_TXN_STATE') && error.details['state'] === state, label);
}

/** How much the runs exercised compaction (printed, so that a change that stops them doing so shows). */
const coverage = { segmentsDeleted: 0, recordsDropped: 0, preparesDropped: 0 };

async function readAll(wal: Wal): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(record);
  return out;
}

/** Keyless records until the segment rolls, so that compactions have sealed segments to work on. */
async function fill(keeper: StateKeeper): Promise<void> {
  for (let i = 0; i < 16; i++) await keeper.append([{ value: Buffer.alloc(300, 'f') }]);
}

async function run(steps: readonly Step[]): Promise<void> {
  const disk = new MemDisk();
  const clock = new FakeClock();
  const model = new Model();
  let opened = await open(disk.mount(), clock);
  try {
    for (const [index, step] of steps.entries()) {
      const label = `step ${index} ${JSON.stringify(step)}`;
      clock.advance(1);
      const { keeper } = opened;
      switch (step.kind) {
        case 'put': {
          const value = `v${step.value}`;
          const { firstOffset } = await keeper.append([{ key: Buffer.from(KEYS[step.key]!), value: Buffer.from(value) }]);
          model.keys.set(KEYS[step.key]!, { value, offset: firstOffset });
          break;
        }
        case 'delete':
          await keeper.append([{ type: 'delete', key: Buffer.from(KEYS[step.key]!), value: Buffer.alloc(0) }]);
          model.keys.delete(KEYS[step.key]!);
          break;
        case 'prepare': {
          const txn = TXNS[step.txn]!;
          const writes: TxnWrite[] = step.writes.map((w) => (w.isDelete ? { op: 'delete', key: Buffer.from(KEYS[w.key]!), value: Buffer.alloc(0) } : { op: 'put', key: Buffer.from(KEYS[w.key]!), value: Buffer.from(`w${w.value}`) }));
          const state = model.stateOf(txn);
          if (state !== 'unknown') {
            await expectRefused(keeper.prepare(Buffer.from(txn), writes), state, label);
            break;
          }
          const { firstOffset } = await keeper.prepare(Buffer.from(txn), writes);
          model.txns.set(txn, { state: 'in_doubt', prepareOffset: firstOffset, writes });
          break;
        }
        case 'commit':
        case 'abort': {
          const txn = TXNS[step.txn]!;
          const state = model.stateOf(txn);
          const call = step.kind === 'commit' ? keeper.commit(Buffer.from(txn)) : keeper.abort(Buffer.from(txn), 'model');
          if (state !== 'in_doubt') {
            await expectRefused(call, state, label);
            break;
          }
          const { firstOffset } = await call;
          if (step.kind === 'commit') model.commit(txn, firstOffset);
          else model.txns.set(txn, { ...model.txns.get(txn)!, state: 'aborted' });
          break;
        }
        case 'prepare+commit': {
          const txn = TXNS[step.txn]!;
          const writes: TxnWrite[] = [{ op: 'put', key: Buffer.from(KEYS[step.key]!), value: Buffer.from(`b${step.value}`) }];
          const records: AppendRecord[] = [
            { type: 'prepare', key: Buffer.from(txn), value: encodeTxnWrites(writes) },
            { type: 'commit', key: Buffer.from(txn), value: Buffer.alloc(0) },
          ];
          const state = model.stateOf(txn);
          if (state !== 'unknown') {
            await expectRefused(keeper.append(records), state, label);
            break;
          }
          const { firstOffset, lastOffset } = await keeper.append(records);
          model.txns.set(txn, { state: 'in_doubt', prepareOffset: firstOffset, writes });
          model.commit(txn, lastOffset);
          break;
        }
        case 'filler':
          await fill(keeper);
          break;
        case 'reopen':
          await opened.close();
          opened = await open(disk.mount(), clock);
          assert.equal(opened.report.inDoubtCount, [...model.txns.values()].filter((t) => t.state === 'in_doubt').length, `${label}: recovery report`);
          break;
        case 'snapshot':
          await keeper.createSnapshot();
          break;
        case 'incremental':
          if (keeper.snapshotSummary().newest === undefined) await keeper.createSnapshot();
          else await keeper.createSnapshot({ incremental: true });
          break;
        case 'compact':
          await fill(keeper);
          coverage.segmentsDeleted += (await opened.compactor.compact()).segmentsDeleted;
          break;
        case 'compact-keys':
          await fill(keeper);
          // Straight to compactKeys: Compact deletes the covered segments first (no retention here), leaving none to rewrite.
          const prepares = async () => (await readAll(opened.wal)).filter((r) => r.type === 'prepare').length;
          const before = await prepares();
          coverage.recordsDropped += (await compactKeys(keeper, opened.wal, { thresholdPercent: 0, clock: clock.now })).recordsDropped;
          coverage.preparesDropped += before - (await prepares());
          break;
      }
      await assertMatches(opened, model, label);
    }
    await opened.close();
    opened = await open(disk.mount(), clock);
    await assertMatches(opened, model, 'after the last reopen');
  } finally {
    await opened.close();
  }
}

describe('transactions against a model', () => {
  test('Get and the in-doubt transactions equal the model after each step, reopen, snapshot and compaction', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => run(steps)),
      { seed: testSeed('transactions against a model'), numRuns: 100, verbose: 1 },
    );
    console.log(`# compaction: ${coverage.segmentsDeleted} segments deleted, ${coverage.recordsDropped} records dropped by key compaction (${coverage.preparesDropped} PREPAREs)`);
    assert.ok(coverage.segmentsDeleted > 0 && coverage.recordsDropped > 0, 'the runs compacted');
  });
});
