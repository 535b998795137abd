/**
 * `wald snapshot create|list|key|get|verify|restore` run as child processes of the built CLI
 * against a real server on 127.0.0.1:0 (in this process): text and --json output (proto field
 * names), exit codes, offline verification of a file and its chain, and a restore of a chain into
 * a new data directory that a server then opens with the same state, appending at the snapshot's
 * offset.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { ServerOptions } from '../../src/server/server-options.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { cleanEnv, runWald, WALD_MAIN, type WaldRun } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

interface Context {
  readonly server: WaldServer;
  /** `wald ARGS... --server ADDRESS`. */
  wald(args: readonly string[]): Promise<WaldRun>;
  /** `wald ARGS...` without --server (offline commands). */
  offline(args: readonly string[]): Promise<WaldRun>;
  readonly temp: string;
  readonly dataDir: string;
}

async function withServer(options: ServerOptions, body: (context: Context) => Promise<void>): Promise<void> {
  const temp = makeTempDir('wald-cli-snapshot-');
  const dataDir = join(temp.dir, 'data');
  const { server } = await WaldServer.open({ dir: dataDir, preallocate: false }, { ...options, listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  try {
    const port = await server.start();
    await body({
      server,
      wald: (args) => runWald([...args, '--server', `127.0.0.1:${port}`]),
      offline: (args) => runWald(args),
      temp: temp.dir,
      dataDir,
    });
  } finally {
    await server.stop();
    temp.remove();
  }
}

function assertOk(run: WaldRun): void {
  assert.equal(run.code, 0, `exit code 0 expected; stderr: ${run.stderr}`);
}

function parse(run: WaldRun): Record<string, unknown> {
  assertOk(run);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const ROW_FIELDS = ['snapshot_id', 'type', 'wal_offset', 'entry_count', 'tombstone_count', 'size_bytes', 'compressed', 'created_ms', 'path', 'base_snapshot_id', 'checksum'];

function flipByte(path: string, position: number): void {
  const bytes = readFileSync(path);
  const at = position < 0 ? bytes.length + position : position;
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(path, bytes);
}

const put = (key: string, value: string): { key: Buffer; value: Buffer } => ({ key: Buffer.from(key), value: Buffer.from(value) });

describe('wald snapshot create, list, key', () => {
  it('creates full and incremental snapshots (text and JSON), refuses an incremental without a base (exit 1), and lists every page', async () => {
    await withServer({}, async ({ server, wald }) => {
      await server.wal.append([put('a', '1')]);
      const noBase = await wald(['snapshot', 'create', '--incremental']);
      assert.equal(noBase.code, 1);
      assert.match(noBase.stderr, /^wald: FAILED_PRECONDITION \(WAL_SNAPSHOT_NO_BASE\): /);
      const noBaseJson = await wald(['snapshot', 'create', '--incremental', '--json']);
      assert.equal(noBaseJson.code, 1);
      assert.equal((JSON.parse(noBaseJson.stderr) as { error: { reason: string } }).error.reason, 'WAL_SNAPSHOT_NO_BASE');

      const text = await wald(['snapshot', 'create']);
      assertOk(text);
      assert.match(text.stdout, /^snapshot +\d{20}-\d{15}-[0-9a-f]{8}\ntype +full\nwal offset +1\nentries +1\n/);
      await server.wal.append([put('b', '2')]);
      const json = parse(await wald(['snapshot', 'create', '--incremental', '--compress', '--json']));
      assert.deepEqual(Object.keys(json), [
        'snapshot_id', 'type', 'wal_offset', 'entry_count', 'tombstone_count', 'size_bytes', 'compressed', 'path', 'duration_ms', 'checksum', 'base_snapshot_id',
      ]);
      assert.equal(json['type'], 'incremental');
      assert.equal(json['wal_offset'], 2);
      assert.equal(json['entry_count'], 1);
      assert.equal(json['compressed'], true);
      assert.equal(json['base_snapshot_id'], /^snapshot +(\S+)/.exec(text.stdout)![1]);

      const point = parse(await wald(['snapshot', 'key', 'a', '--json']));
      assert.deepEqual(Object.keys(point), ['snapshot_id', 'wal_offset', 'size_bytes', 'checksum', 'path']);
      const pointText = await wald(['snapshot', 'key', 'b']);
      assertOk(pointText);
      assert.match(pointText.stdout, /^snapshot +\S+\nwal offset +2\n/);
      const missing = await wald(['snapshot', 'key', 'nobody']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^wald: NOT_FOUND \(WAL_KEY_NOT_FOUND\)/);

      const listed = await wald(['snapshot', 'list']);
      assertOk(listed);
      const lines = listed.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^ID +TYPE +WAL_OFFSET +ENTRIES +TOMBSTONES +SIZE_BYTES +GZIP +CREATED +BASE$/);
      assert.match(lines[1]!, / full +1 +1 +0 +\d+ +no +\d{4}-/);
      assert.match(lines[2]!, / incremental +2 +1 +0 +\d+ +yes +\d{4}-\S+ +\d{20}-/);
      assert.equal(lines[5], '(4 snapshots)');

      // More than one page of ListSnapshots (1000 a page): the CLI fetches them all.
      for (let i = 0; i < 1000; i++) await server.state.snapshotKey(Buffer.from('a'));
      const all = parse(await wald(['snapshot', 'list', '--json'])) as { snapshots: Record<string, unknown>[] };
      assert.equal(all.snapshots.length, 1004);
      assert.deepEqual(Object.keys(all.snapshots[0]!), ROW_FIELDS);
      const ids = all.snapshots.map((row) => row['snapshot_id'] as string);
      assert.deepEqual(ids, [...ids].sort());
      assert.equal(new Set(ids).size, ids.length);
    });
  });
});

describe('wald snapshot verify and get', () => {
  it('verifies by id on the server and by path offline (its chain beside it), exit 1 naming the damaged file; get writes the checked bytes', async () => {
    await withServer({}, async ({ server, wald, offline, temp, dataDir }) => {
      await server.wal.append([put('a', '1'), put('b', '2')]);
      const full = parse(await wald(['snapshot', 'create', '--json']));
      await server.wal.append([put('c', '3')]);
      const incremental = parse(await wald(['snapshot', 'create', '--incremental', '--json']));
      const id = incremental['snapshot_id'] as string;
      const path = incremental['path'] as string;

      const byId = await wald(['snapshot', 'verify', id]);
      assertOk(byId);
      assert.match(byId.stdout, new RegExp(`^${id}: valid \\(2 files in the chain\\)\\n`));
      const byPath = parse(await offline(['snapshot', 'verify', path, '--json']));
      assert.equal(byPath['valid'], true);
      assert.deepEqual((byPath['chain'] as Record<string, unknown>[]).map((row) => row['snapshot_id']), [full['snapshot_id'], id]);
      assert.deepEqual((byPath['chain'] as Record<string, unknown>[]).map((row) => row['checksum']), [full['checksum'], incremental['checksum']]);

      const out = join(temp, 'backup', basename(path));
      mkdirSync(join(temp, 'backup'));
      const got = parse(await wald(['snapshot', 'get', id, '--out', out, '--json']));
      assert.equal(got['checksum'], incremental['checksum']);
      assert.ok(readFileSync(out).equals(readFileSync(path)));
      const again = await wald(['snapshot', 'get', id, '--out', out]);
      assert.equal(again.code, 1, 'an existing --out is refused');
      assert.match(again.stderr, /exists already/);
      const badId = await wald(['snapshot', 'get', 'nonsense', '--out', join(temp, 'x')]);
      assert.equal(badId.code, 2);

      flipByte(full['path'] as string, 100);
      const damaged = await offline(['snapshot', 'verify', path, '--json']);
      assert.equal(damaged.code, 1);
      assert.deepEqual(JSON.parse(damaged.stdout), { valid: false, chain: [], failed_path: full['path'], reason: 'checksum mismatch' });
      const damagedText = await wald(['snapshot', 'verify', id]);
      assert.equal(damagedText.code, 1);
      assert.match(damagedText.stdout, new RegExp(`^valid +no\\nfailed file +${full['path'] as string}\\nreason +checksum mismatch\\n$`));
      assert.match(damagedText.stderr, /is not valid/);
      const unknown = await wald(['snapshot', 'verify', id.slice(0, -1) + (id.endsWith('0') ? '1' : '0')]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /NOT_FOUND \(WAL_SNAPSHOT_NOT_FOUND\)/);
      assert.ok(existsSync(dataDir));
    });
  });
});

describe('wald snapshot restore', () => {
  it('restores a chain into a new directory: a server on it answers Get the same for every key and appends at the snapshot offset', async () => {
    await withServer({}, async ({ server, wald, offline, temp, dataDir }) => {
      for (let i = 0; i < 300; i += 100) await server.wal.append(Array.from({ length: 100 }, (_, j) => put(`key-${(i + j) % 120}`, `value-${i + j}`)));
      const full = parse(await wald(['snapshot', 'create', '--json']));
      await server.wal.append([{ key: Buffer.from('key-5'), value: Buffer.alloc(0), type: 'delete' }, put('key-7', 'changed'), put('new-key', 'x')]);
      const incremental = parse(await wald(['snapshot', 'create', '--incremental', '--compress', '--json']));
      const walOffset = incremental['wal_offset'] as number;
      assert.equal(walOffset, 303);
      // Records after the snapshot are not in it: the restored state is the snapshot's.
      await server.wal.append([put('after', 'snapshot')]);
      const expected = new Map<string, string>();
      for (const entry of (await server.state.listKeys({ limit: 1000, prefix: new Uint8Array(0), pageToken: '', maxBytes: 1 << 30 })).keys) {
        const key = Buffer.from(entry.key).toString();
        if (key !== 'after') expected.set(key, `${Buffer.from((await server.state.get(entry.key))!.value).toString()}@${entry.offset}`);
      }
      assert.equal(expected.has('key-5'), false);

      const newDir = join(temp, 'restored');
      const restored = parse(await offline(['snapshot', 'restore', incremental['snapshot_id'] as string, '--from-data-dir', dataDir, '--data-dir', newDir, '--verify', '--json']));
      assert.equal(restored['first_offset'], walOffset);
      assert.equal(restored['verified'], true);
      assert.deepEqual((restored['chain'] as Record<string, unknown>[]).map((row) => row['snapshot_id']), [full['snapshot_id'], incremental['snapshot_id']]);

      const { server: second, stateReport } = await WaldServer.open({ dir: newDir, preallocate: false }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
      try {
        assert.equal(stateReport.snapshot?.id, incremental['snapshot_id']);
        assert.equal(second.wal.firstOffset, walOffset);
        assert.equal(second.state.keyCount, expected.size);
        for (const [key, valueAt] of expected) {
          const entry = (await second.state.get(Buffer.from(key)))!;
          assert.equal(`${Buffer.from(entry.value).toString()}@${entry.offset}`, valueAt, key);
        }
        assert.equal(await second.state.get(Buffer.from('after')), undefined);
        const { firstOffset } = await second.state.append([put('next', 'one')]);
        assert.equal(firstOffset, walOffset, 'the next append gets the snapshot offset');
        assert.equal(Buffer.from((await second.state.get(Buffer.from('next')))!.value).toString(), 'one');
      } finally {
        await second.stop();
      }

      // The directory is not empty now: refused (exit 1) without --overwrite, replaced with it.
      const refused = await offline(['snapshot', 'restore', full['path'] as string, '--data-dir', newDir]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /WAL_INVALID_ARGUMENT: dataDir: .* is not empty/);
      const text = await offline(['snapshot', 'restore', full['path'] as string, '--data-dir', newDir, '--overwrite']);
      assertOk(text);
      assert.match(text.stdout, new RegExp(`^snapshot +${full['snapshot_id'] as string}\\n.*first offset +300\\n`, 's'));
      assert.match(text.stdout, /files removed +\d+\n/);

      // --verify reads every entry: a damaged base fails it, naming the file, and nothing is written.
      flipByte(full['path'] as string, 90);
      const otherDir = join(temp, 'other');
      const damaged = await offline(['snapshot', 'restore', incremental['snapshot_id'] as string, '--snapshot-dir', join(dataDir, 'snapshots'), '--data-dir', otherDir, '--verify']);
      assert.equal(damaged.code, 1);
      assert.match(damaged.stderr, new RegExp(`WAL_CORRUPTION: snapshot ${full['path'] as string} cannot be restored: checksum mismatch`));
      assert.equal(existsSync(otherDir), false);
      // Without --verify the copy's checksum still catches it.
      const copied = await offline(['snapshot', 'restore', incremental['snapshot_id'] as string, '--snapshot-dir', join(dataDir, 'snapshots'), '--data-dir', otherDir, '--json']);
      assert.equal(copied.code, 1);
      assert.match(copied.stderr, /checksum mismatch/);

      const noDir = await offline(['snapshot', 'restore', incremental['snapshot_id'] as string, '--data-dir', join(temp, 'x')]);
      assert.equal(noDir.code, 2, 'an id needs --snapshot-dir or --from-data-dir');
      const noDataDir = await offline(['snapshot', 'restore', full['path'] as string]);
      assert.equal(noDataDir.code, 2);
      const sha = createHash('sha256').update(readFileSync(incremental['path'] as string).subarray(0, -40)).digest('hex');
      assert.equal(sha, incremental['checksum']);
    });
  });
});

describe('wald snapshot restore --overwrite', () => {
  it('refuses before removing anything: a source that fails its checksum, a subdirectory in the target, a source inside it through a link', async () => {
    await withServer({}, async ({ server, wald, offline, temp }) => {
      await server.wal.append(Array.from({ length: 50 }, (_, i) => put(`key-${i % 10}`, `value-${i}`)));
      const snapshot = parse(await wald(['snapshot', 'create', '--json']));
      const target = join(temp, 'target');
      assertOk(await offline(['snapshot', 'restore', snapshot['path'] as string, '--data-dir', target]));
      await server.wal.append([put('more', 'x')]);
      const listing = (): string[] => [...readdirSync(target), ...readdirSync(join(target, 'snapshots')).map((name) => `snapshots/${name}`)].sort();
      const before = listing();
      assert.ok(before.some((name) => name.endsWith('.seg')), 'the target has a log');

      const bad = join(temp, 'bad.snap');
      copyFileSync(snapshot['path'] as string, bad);
      flipByte(bad, 100);
      const damaged = await offline(['snapshot', 'restore', bad, '--data-dir', target, '--overwrite']);
      assert.equal(damaged.code, 1);
      assert.match(damaged.stderr, /checksum mismatch/);
      assert.deepEqual(listing(), before, 'a damaged source removed nothing');

      mkdirSync(join(target, 'repair-left-behind'));
      const withDirectory = await offline(['snapshot', 'restore', snapshot['path'] as string, '--data-dir', target, '--overwrite']);
      assert.equal(withDirectory.code, 1);
      assert.match(withDirectory.stderr, /WAL_INVALID_ARGUMENT: dataDir: .*repair-left-behind is a directory.*nothing was removed/);
      assert.deepEqual(listing().filter((name) => name !== 'repair-left-behind'), before, 'a directory in the target removed nothing');
      rmSync(join(target, 'repair-left-behind'), { recursive: true });

      const link = join(temp, 'link');
      symlinkSync(target, link);
      const insideSource = join(target, 'snapshots', basename(snapshot['path'] as string));
      const throughLink = await offline(['snapshot', 'restore', insideSource, '--data-dir', link, '--overwrite']);
      assert.equal(throughLink.code, 1);
      assert.match(throughLink.stderr, /WAL_INVALID_ARGUMENT: source: .* is inside/);
      assert.deepEqual(listing(), before, 'a source inside the target, reached through a link, removed nothing');

      // And a good one replaces what the target held.
      assertOk(await offline(['snapshot', 'restore', snapshot['path'] as string, '--data-dir', target, '--overwrite']));
    });
  });
});

/** The body of the ```sh block of docs/cli.md whose first line is `# example: NAME`. */
function docExample(name: string): string {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/cli.md', import.meta.url)), 'utf8');
  const found = doc.split('```sh\n').slice(1).map((rest) => rest.slice(0, rest.indexOf('```'))).filter((block) => block.startsWith(`# example: ${name}\n`));
  assert.equal(found.length, 1, `docs/cli.md has exactly one example named ${name}`);
  return found[0]!;
}

describe('docs/cli.md snapshot-backup', () => {
  it('downloads, verifies and restores a snapshot into a directory a server opens with the same state', async () => {
    await withServer({}, async ({ server, temp }) => {
      await server.wal.append([put('a', '1'), put('b', '2'), put('a', '3')]);
      writeFileSync(join(temp, 'wald'), `#!/bin/sh\nexec "${process.execPath}" "${WALD_MAIN}" "$@"\n`);
      chmodSync(join(temp, 'wald'), 0o755);
      const child = spawn('bash', ['-euo', 'pipefail', '-c', docExample('snapshot-backup')], {
        cwd: temp,
        env: cleanEnv({ PATH: `${temp}:${process.env.PATH ?? ''}`, WALD_SERVER: `127.0.0.1:${server.port!}` }),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const [code] = (await once(child, 'close')) as [number | null];
      assert.equal(code, 0, stderr);
      assert.equal(readFileSync(join(temp, 'restored.offset'), 'utf8').trim(), '3');
      const { server: restored } = await WaldServer.open({ dir: join(temp, 'restored'), preallocate: false }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
      try {
        assert.equal(Buffer.from((await restored.state.get(Buffer.from('a')))!.value).toString(), '3');
        assert.equal(restored.wal.nextOffset, 3);
      } finally {
        await restored.stop();
      }
    });
  });
});
