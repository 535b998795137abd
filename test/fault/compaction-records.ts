/**
 * The records and checks of the compaction fault tests (kill -9 and power cuts during compaction
 * under load): writer `w` of round `r` puts key `r<r>w<w>k<i mod KEYS_PER_WRITER>` to a value
 * naming `(r, w, i)`, one append each, in order; so the latest acknowledged put of a key is known,
 * and a later one (written, its acknowledgement lost with the process) can be told apart.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Wal } from '../../src/index.js';
import { StateKeeper } from '../../src/state/state-keeper.js';
import { NodeStorage } from '../../src/storage/node-storage.js';

/** Concurrent writers in the child, so that appends share group commits while compactions run. */
export const COMPACTION_WRITERS = 3;
/** Appends each writer makes at most: more than the parent waits for before its kill. */
export const APPENDS_PER_WRITER = 600;
/** Keys each writer overwrites in turn. */
export const KEYS_PER_WRITER = 25;
/** Small segments, so that compactions delete several while the writers go on. */
export const COMPACTION_SEGMENT_BYTES = 16 * 1024;
/** Bytes of padding in each value. */
const VALUE_FILL_BYTES = 200;

/** One acknowledged append, as the child prints it. */
export interface CompactionAck {
  readonly round: number;
  readonly writer: number;
  readonly i: number;
  readonly offset: number;
}

/** The key of append `i` of writer `writer` in round `round`. */
export function keyOf(round: number, writer: number, i: number): Buffer {
  return Buffer.from(`r${round}w${writer}k${i % KEYS_PER_WRITER}`);
}

/** The value of that append: `r,w,i` then padding. */
export function valueOf(round: number, writer: number, i: number): Buffer {
  return Buffer.from(`${round},${writer},${i};`.padEnd(VALUE_FILL_BYTES, '.'));
}

function appendIndexOf(value: Buffer): { round: number; writer: number; i: number } {
  const [round, writer, i] = value.toString('latin1').split(';')[0]!.split(',').map(Number);
  return { round: round!, writer: writer!, i: i! };
}

const CHILD = fileURLToPath(new URL('./compaction-child.js', import.meta.url));

/** What one child printed, and how it ended. */
export interface CompactionChildRun {
  readonly acks: CompactionAck[];
  compactions: number;
  /** Segments the compactions deleted, all together. */
  segmentsDeleted: number;
  nextOffsetAtStart: number;
  signal: NodeJS.Signals | null;
  code: number | null;
}

/** Runs the child on `dir` until `shouldKill` says so (then SIGKILL), collecting its lines. */
export async function runCompactionChild(dir: string, round: number, shouldKill: (run: CompactionChildRun) => boolean): Promise<CompactionChildRun> {
  const env = { ...process.env, WALD_COMPACTION_DIR: dir, WALD_COMPACTION_ROUND: String(round) };
  const child = spawn(process.execPath, [CHILD], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const run: CompactionChildRun = { acks: [], compactions: 0, segmentsDeleted: 0, nextOffsetAtStart: -1, signal: null, code: null };
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      const message = JSON.parse(line) as Partial<CompactionAck> & { ready?: boolean; nextOffset?: number; compacted?: boolean; segmentsDeleted?: number };
      if (message.ready === true) run.nextOffsetAtStart = message.nextOffset ?? -1;
      else if (message.compacted === true) {
        run.compactions++;
        run.segmentsDeleted += message.segmentsDeleted ?? 0;
      }
      else if (message.offset !== undefined) run.acks.push(message as CompactionAck);
      if (run.nextOffsetAtStart >= 0 && shouldKill(run)) kill();
    }
  } finally {
    kill();
  }
  [run.signal, run.code] = await closed.then(([code, signal]) => [signal, code] as const);
  return run;
}

/**
 * Reopens the log in `dir` with its view and checks it against every append acknowledged so far:
 * the view opens (a snapshot covers the compacted part), each key holds its latest acknowledged
 * put or a later put of the same writer, every acknowledged record still retained reads back
 * identical at its offset, and the log goes on past the last acknowledged offset. Resolves with
 * the log's next offset.
 */
export async function checkCompactedLog(dir: string, acked: readonly CompactionAck[], where: string): Promise<{ nextOffset: number; firstOffset: number }> {
  const storage = new NodeStorage();
  const { wal } = await Wal.open({ dir, storage, syncPolicy: 'always', segmentSizeBytes: COMPACTION_SEGMENT_BYTES });
  try {
    const { keeper } = await StateKeeper.open({ wal, storage });
    try {
      const latest = new Map<string, CompactionAck>();
      for (const ack of acked) {
        const key = keyOf(ack.round, ack.writer, ack.i).toString();
        const known = latest.get(key);
        if (known === undefined || known.i < ack.i) latest.set(key, ack);
      }
      for (const [key, ack] of latest) {
        const entry = await keeper.get(Buffer.from(key));
        assert.ok(entry !== undefined, `${where}: key ${key} (acknowledged at offset ${ack.offset}) is in the view`);
        const found = appendIndexOf(entry.value);
        assert.equal(found.writer, ack.writer, `${where}: key ${key}`);
        assert.ok(entry.offset >= ack.offset && found.i >= ack.i, `${where}: key ${key} holds put ${found.i} at ${entry.offset}, not below the acknowledged ${ack.i} at ${ack.offset}`);
        if (entry.offset === ack.offset) assert.deepEqual(entry.value, valueOf(ack.round, ack.writer, ack.i));
      }
      for (const ack of acked) {
        if (ack.offset < wal.firstOffset) continue;
        const [record] = await wal.read(ack.offset, { limit: 1 });
        assert.deepEqual(record?.value, valueOf(ack.round, ack.writer, ack.i), `${where}: the record at offset ${ack.offset}`);
        assert.deepEqual(record?.key, keyOf(ack.round, ack.writer, ack.i));
      }
      const lastAcked = Math.max(-1, ...acked.map((ack) => ack.offset));
      assert.ok(wal.nextOffset > lastAcked, `${where}: the log goes on after the last acknowledged offset ${lastAcked} (next ${wal.nextOffset})`);
      return { nextOffset: wal.nextOffset, firstOffset: wal.firstOffset };
    } finally {
      await keeper.close();
    }
  } finally {
    await wal.close();
  }
}
