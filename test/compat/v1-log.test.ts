import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Wal, type WalRecord } from '../../src/index.js';
import { MemDisk } from '../support/mem-disk.js';
import { makeTempDir } from '../support/temp-dir.js';

const FIXTURES = fileURLToPath(new URL('../../../test/compat/fixtures/v1-27a8d45/', import.meta.url));

interface ExpectedRecord {
  readonly offset: number;
  readonly timestamp: number;
  readonly type: string;
  /** Absent for a record without a key. */
  readonly key?: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
}

interface Expected {
  readonly report: { readonly records: number; readonly firstOffset: number; readonly nextOffset: number; readonly faults: readonly string[] };
  readonly records: readonly ExpectedRecord[];
}

function asExpected(record: WalRecord): ExpectedRecord {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    type: record.type,
    ...(record.key === undefined ? {} : { key: record.key.toString('base64') }),
    value: record.value.toString('base64'),
    headers: Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, value.toString('base64')])),
  };
}

async function readAll(wal: Wal): Promise<ExpectedRecord[]> {
  const out: ExpectedRecord[] = [];
  for await (const record of wal.range(wal.firstOffset)) out.push(asExpected(record));
  return out;
}

for (const name of ['clean', 'crashed']) {
  describe(`a log written by format version 1 (27a8d45, ${name})`, () => {
    test('opens and reads back the same records, then takes appends and reopens', async () => {
      const expected = JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected;
      const temp = makeTempDir('wald-compat-');
      try {
        const dir = join(temp.dir, name);
        cpSync(join(FIXTURES, name), dir, { recursive: true });
        const { wal, report } = await Wal.open({ dir, segmentSizeBytes: 4096 });
        assert.equal(report.records, expected.report.records);
        assert.equal(report.firstOffset, expected.report.firstOffset);
        assert.equal(report.nextOffset, expected.report.nextOffset);
        assert.deepEqual(report.faults.map((f) => f.kind), expected.report.faults);
        assert.deepEqual(await readAll(wal), expected.records);
        // Version 1 segments go on being read as they are; new frames are written after them.
        const appended = await wal.append([{ key: Buffer.from('after'), value: Buffer.from('upgrade') }]);
        assert.equal(appended.firstOffset, expected.report.nextOffset);
        await wal.close();
        const reopened = await Wal.open({ dir, segmentSizeBytes: 4096 });
        const all = await readAll(reopened.wal);
        assert.deepEqual(all.slice(0, expected.records.length), expected.records);
        assert.equal(all.length, expected.records.length + 1);
        assert.equal(Buffer.from(all.at(-1)!.value, 'base64').toString(), 'upgrade');
        await reopened.wal.close();
      } finally {
        temp.remove();
      }
    });
  });
}

describe('a log written by format version 1, continued by this engine', () => {
  test('a power cut that persists the new frames out of order is a torn tail, not corruption', async () => {
    // Load the clean fixture into the crashable disk, as it was on disk (all synced).
    const disk = new MemDisk();
    const storage = disk.mount();
    storage.mkdirp('/data');
    const source = join(FIXTURES, 'clean');
    for (const name of readdirSync(source)) {
      const file = storage.open(`/data/${name}`, 'create-new');
      file.writev([readFileSync(join(source, name))], 0);
      file.sync();
      file.close();
    }
    storage.syncDir('/data');
    const { wal } = await Wal.open({ dir: '/data', storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false, syncPolicy: 'none' });
    const before = wal.nextOffset;
    // Page-sized records appended to the version-1 active segment, never synced.
    for (const name of ['a', 'b', 'c', 'd']) await wal.append([{ value: Buffer.from(name.padEnd(4000, '.')) }]);
    // Lose the page that starts the first new frame, keep the pages after it.
    const choices = [0, 0.9, 0, 0, 0, 0];
    disk.crash({ randomPages: (path) => (path.endsWith('00000000000000000085.seg') ? (choices.shift() ?? 0) : 0.9) });
    await wal.close().catch(() => undefined);
    const { wal: reopened, report } = await Wal.open({ dir: '/data', storage: disk.mount(), segmentSizeBytes: 1 << 20, preallocate: false });
    assert.ok(reopened.nextOffset >= before, 'nothing the version-1 engine wrote is lost');
    assert.ok(report.faults.some((f) => f.kind === 'torn-tail'), 'the unsynced frames were cut as a torn tail');
    await reopened.close();
  });
});
