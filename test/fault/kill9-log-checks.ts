/**
 * What a log written by kill9-child.ts must look like after a crash: read back whole, offsets
 * dense, only whole batches of what the children wrote, and the acknowledged batches byte for byte.
 */
import assert from 'node:assert/strict';
import type { Wal, WalRecord } from '../../src/index.js';
import { BATCHES_PER_WRITER, digestRecords, readTag, sameRecord, WRITERS, writerBatches, type AckLine, type RecordBytes } from './kill9-records.js';

const READ_PAGE_RECORDS = 1000;
/** Bounds the read-back loop: far more pages than a test's children can write. */
const MAX_READ_PAGES = 10_000;

/** Every record of the log, checking that offsets run densely from 0. */
export async function readWholeLog(wal: Wal): Promise<WalRecord[]> {
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
 * writer's batches of a round in order and without gaps, and the rounds one after another. So an
 * unacknowledged batch can never sit in the middle: every batch is one the children wrote, in
 * each writer's order.
 */
export function checkStructure(records: readonly WalRecord[], seed: number): void {
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

/** Checks that every acknowledged batch is in the log with identical bytes. */
export function checkAcks(records: readonly WalRecord[], acks: readonly AckLine[]): void {
  for (const ack of acks) {
    assert.ok(ack.lastOffset < records.length, `acknowledged offsets ${ack.firstOffset}..${ack.lastOffset} survive (log has ${records.length})`);
    checkAckBytes(records, ack);
  }
}

/**
 * For a policy that may lose acknowledged appends: what was lost is a suffix. Every acknowledged
 * batch that starts inside the log is there whole with identical bytes; the ones after its end are
 * gone. Returns the acknowledged batches that survived.
 */
export function checkAckedPrefix(records: readonly WalRecord[], acks: readonly AckLine[]): AckLine[] {
  const kept = acks.filter((ack) => ack.firstOffset < records.length);
  for (const ack of kept) {
    assert.ok(ack.lastOffset < records.length, `acknowledged offsets ${ack.firstOffset}..${ack.lastOffset} are whole or gone, not cut (log has ${records.length})`);
    checkAckBytes(records, ack);
  }
  return kept;
}

function checkAckBytes(records: readonly WalRecord[], ack: AckLine): void {
  const batch = records.slice(ack.firstOffset, ack.lastOffset + 1);
  assert.equal(digestRecords(batch), ack.digest, `acknowledged offsets ${ack.firstOffset}..${ack.lastOffset} hold identical bytes`);
}
