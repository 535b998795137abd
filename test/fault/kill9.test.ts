/**
 * SIGKILL of a child process appending with `always`, a few times on the same directory: after each
 * kill every acknowledged batch is in the log with identical bytes, offsets are dense from 0, batches
 * are whole, and nothing but what the child wrote is there.
 *
 * Randomised: prints its seed; replay with `WALD_TEST_SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Wal, type WalRecord } from '../../src/index.js';
import {
  BATCHES_PER_WRITER,
  digestRecords,
  readTag,
  sameRecord,
  seededRandom,
  SEGMENT_SIZE_BYTES,
  WRITERS,
  writerBatches,
  type AckLine,
  type RecordBytes,
} from './kill9-records.js';

const ROUNDS = 4;
/** The kill comes after 0..MAX_ACKS_BEFORE_KILL acknowledgements: always before the child is done. */
const MAX_ACKS_BEFORE_KILL = 200;
const CHILD = fileURLToPath(new URL('./kill9-child.js', import.meta.url));
const READ_PAGE_RECORDS = 1000;
/** Bounds the read-back loop: far more pages than the child can write in ROUNDS rounds. */
const MAX_READ_PAGES = 10_000;

assert.ok(MAX_ACKS_BEFORE_KILL < WRITERS * BATCHES_PER_WRITER);

interface RoundResult {
  readonly acks: AckLine[];
  readonly nextOffsetAtStart: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Runs one child until it has printed `killAfter` acknowledgements, kills it, and collects every line it printed. */
async function runChild(dir: string, round: number, seed: number, killAfter: number): Promise<RoundResult> {
  const child = spawn(process.execPath, [CHILD], {
    env: { ...process.env, WALD_KILL9_DIR: dir, WALD_KILL9_ROUND: String(round), WALD_KILL9_SEED: String(seed) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const acks: AckLine[] = [];
  let nextOffsetAtStart = -1;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      const message = JSON.parse(line) as Partial<AckLine> & { ready?: boolean; nextOffset?: number };
      if (message.ready === true) nextOffsetAtStart = message.nextOffset ?? -1;
      else if (message.digest !== undefined) acks.push(message as AckLine);
      if (acks.length >= killAfter && nextOffsetAtStart >= 0) kill();
    }
  } finally {
    kill();
  }
  const [code, signal] = await closed;
  return { acks, nextOffsetAtStart, code, signal };
}

/** Every record of the log, checking that offsets run densely from 0. */
async function readAll(wal: Wal): Promise<WalRecord[]> {
  const records: WalRecord[] = [];
  for (let page = 0; page < MAX_READ_PAGES && records.length <= wal.highWatermark; page++) {
    const got = await wal.read(records.length, { limit: READ_PAGE_RECORDS });
    assert.ok(got.length > 0, `read(${records.length}) returned nothing below the high watermark ${wal.highWatermark}`);
    for (const record of got) {
      assert.equal(record.offset, records.length, 'offsets are dense from 0');
      records.push(record);
    }
  }
  assert.equal(records.length, wal.highWatermark + 1, 'the whole log was read');
  return records;
}

/**
 * Checks that the log holds exactly what the children wrote, byte for byte: whole batches, each
 * writer's batches of a round in order and without gaps, and the rounds one after another.
 */
function checkStructure(records: readonly WalRecord[], seed: number): void {
  let lastRound = 0;
  const expected = new Map<string, Generator<RecordBytes[]>>();
  const nextSeq = new Map<string, number>();
  let at = 0;
  for (let batches = 0; at < records.length && batches <= records.length; batches++) {
    const tag = readTag(records[at]!.value);
    assert.ok(tag !== undefined && tag.index === 0 && tag.writer < WRITERS, `offset ${at} starts a batch`);
    assert.ok(tag.round >= lastRound, `offset ${at}: round ${tag.round} after round ${lastRound}`);
    lastRound = tag.round;
    const writer = `${tag.round}/${tag.writer}`;
    assert.equal(tag.seq, nextSeq.get(writer) ?? 0, `offset ${at}: writer ${writer} continues with its next batch`);
    nextSeq.set(writer, tag.seq + 1);
    let batches = expected.get(writer);
    if (batches === undefined) {
      batches = writerBatches(seed, tag.round, tag.writer, BATCHES_PER_WRITER);
      expected.set(writer, batches);
    }
    const batch = batches.next();
    assert.ok(batch.done !== true, `offset ${at}: writer ${writer} wrote no batch ${tag.seq}`);
    assert.ok(at + batch.value.length <= records.length, `the batch at offset ${at} (${batch.value.length} records) is whole, not cut by the end of the log`);
    batch.value.forEach((record, index) => {
      assert.ok(sameRecord(records[at + index]!, record), `offset ${at + index} holds record ${index} of batch ${writer}#${tag.seq}, intact`);
    });
    at += batch.value.length;
  }
  assert.equal(at, records.length);
}

function checkAcks(records: readonly WalRecord[], acks: readonly AckLine[]): void {
  for (const ack of acks) {
    assert.ok(ack.lastOffset < records.length, `acknowledged offsets ${ack.firstOffset}..${ack.lastOffset} survive (log has ${records.length})`);
    const batch = records.slice(ack.firstOffset, ack.lastOffset + 1);
    assert.equal(digestRecords(batch), ack.digest, `acknowledged offsets ${ack.firstOffset}..${ack.lastOffset} hold identical bytes`);
  }
}

test('every acknowledged append survives SIGKILL of the appending process, offsets dense, batches whole', { timeout: 300_000 }, async (t) => {
  const seedText = process.env['WALD_TEST_SEED'];
  const seed = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  assert.ok(Number.isInteger(seed), `WALD_TEST_SEED must be an integer, got ${String(seedText)}`);
  t.diagnostic(`seed ${seed} (replay with WALD_TEST_SEED=${seed})`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'wald-kill9-'));
  const acked: AckLine[] = [];
  let expectedNext = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = random(MAX_ACKS_BEFORE_KILL + 1);
      const result = await runChild(dir, round, seed, killAfter);
      t.diagnostic(`round ${round}: killed after ${killAfter} acks, ${result.acks.length} acknowledged in all`);
      assert.equal(result.signal, 'SIGKILL', `round ${round}: the child was killed, not ended by itself (exit code ${String(result.code)})`);
      assert.equal(result.nextOffsetAtStart, expectedNext, `round ${round}: the child found the log as the last check left it`);
      acked.push(...result.acks);
      const { wal, report } = await Wal.open({ dir, syncPolicy: 'always', segmentSizeBytes: SEGMENT_SIZE_BYTES });
      try {
        t.diagnostic(`round ${round}: recovered ${report.records} records; faults: ${report.faults.map((f) => f.kind).join(', ') || 'none'}`);
        const records = await readAll(wal);
        checkStructure(records, seed);
        checkAcks(records, acked);
        expectedNext = records.length;
      } finally {
        await wal.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
