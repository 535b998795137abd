import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { Client, credentials } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { loadDescriptorSet, splitDescriptorSet } from '../../src/server/reflection.js';
import { startServer, values, type Harness } from './support/harness.js';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUF = fileURLToPath(new URL('../../../node_modules/.bin/buf', import.meta.url));

/** Runs the pinned `buf curl` against the harness over plaintext HTTP/2, with reflection. */
async function bufCurl(args: readonly string[]): Promise<string> {
  const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { cwd: REPO_ROOT, timeout: 60_000 });
  return stdout;
}

function url(h: Harness, path = ''): string {
  return `http://${h.address}${path}`;
}

/** Splits the output of `buf curl` (pretty JSON objects, one after another) into objects. */
function jsonObjects(text: string): Record<string, unknown>[] {
  const objects: Record<string, unknown>[] = [];
  let current: string[] = [];
  for (const line of text.split('\n')) {
    current.push(line);
    if (line === '}') {
      objects.push(JSON.parse(current.join('\n')) as Record<string, unknown>);
      current = [];
    }
  }
  return objects;
}

/** A ServerReflectionRequest asking for the file that defines `symbol` (field 4). */
function encodeReflectionRequest(symbol: string): Buffer {
  return Buffer.from(new BinaryWriter().uint32((4 << 3) | WireType.LengthDelimited).string(symbol).finish());
}

/** The file_descriptor_proto bytes of a ServerReflectionResponse (field 4, then its field 1). */
function decodeFileDescriptors(bytes: Buffer): Uint8Array[] {
  const files: Uint8Array[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 4 && wireType === WireType.LengthDelimited) {
      const inner = new BinaryReader(reader.bytes());
      while (inner.pos < inner.len) {
        const [innerField, innerType] = inner.tag();
        if (innerField === 1 && innerType === WireType.LengthDelimited) {
          files.push(inner.bytes());
        } else {
          inner.skip(innerType);
        }
      }
    } else {
      reader.skip(wireType);
    }
  }
  return files;
}

/** Asks the server's reflection service (`version` v1 or v1alpha) for the files defining `symbol`. */
async function reflectFiles(h: Harness, version: 'v1' | 'v1alpha', symbol: string): Promise<Uint8Array[]> {
  const client = new Client(h.address, credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      (value: Buffer) => value,
      (value: Buffer) => value,
    );
    call.write(encodeReflectionRequest(symbol));
    const [response] = (await once(call, 'data')) as [Buffer];
    call.end();
    return decodeFileDescriptors(response);
  } finally {
    client.close();
  }
}

describe('server reflection', { timeout: 120_000 }, () => {
  test('buf curl lists services and methods through reflection alone (v1 and v1alpha)', async () => {
    const h = await startServer();
    try {
      const services = (await bufCurl(['--list-services', url(h)])).trim().split('\n');
      assert.ok(services.includes('wald.v1.WalService'), services.join(','));
      assert.ok(services.includes('grpc.health.v1.Health'), services.join(','));
      const methods = (await bufCurl(['--list-methods', url(h)])).trim().split('\n');
      for (const method of ['Append', 'AppendStream', 'Read', 'TailWal', 'GetStats', 'Sync']) {
        assert.ok(methods.includes(`wald.v1.WalService/${method}`), method);
      }
      assert.ok(methods.includes('grpc.health.v1.Health/Check'));
      const alpha = (await bufCurl(['--reflect-protocol', 'grpc-v1alpha', '--list-methods', url(h)])).trim().split('\n');
      assert.ok(alpha.includes('wald.v1.WalService/TailWal'));
    } finally {
      await h.close();
    }
  });

  test('buf curl calls Append, Read, GetStats and the health check through reflection', async () => {
    const h = await startServer();
    try {
      const body = JSON.stringify({ records: [{ key: Buffer.from('k').toString('base64'), value: Buffer.from('hello').toString('base64'), headers: { h: 'AA==' } }] });
      const first = jsonObjects(await bufCurl(['--emit-defaults', '-d', body, url(h, '/wald.v1.WalService/Append')]));
      assert.equal(first[0]!['firstOffset'], '0');
      const second = jsonObjects(await bufCurl(['-d', body, url(h, '/wald.v1.WalService/Append')]));
      assert.equal(second[0]!['firstOffset'], '1');
      const read = jsonObjects(await bufCurl(['-d', '{"fromOffset":"1"}', url(h, '/wald.v1.WalService/Read')]));
      const records = read[0]!['records'] as { value: string; offset: string; type: string; headers: Record<string, string> }[];
      assert.equal(records.length, 1);
      assert.equal(records[0]!.offset, '1');
      assert.equal(Buffer.from(records[0]!.value, 'base64').toString(), 'hello');
      assert.equal(records[0]!.type, 'RECORD_TYPE_PUT');
      assert.deepEqual(records[0]!.headers, { h: 'AA==' });
      const stats = jsonObjects(await bufCurl(['-d', '{}', url(h, '/wald.v1.WalService/GetStats')]));
      assert.equal(stats[0]!['entryCount'], '2');
      const health = jsonObjects(await bufCurl(['-d', '{"service":"wald.v1.WalService"}', url(h, '/grpc.health.v1.Health/Check')]));
      assert.equal(health[0]!['status'], 'SERVING');
    } finally {
      await h.close();
    }
  });

  test('buf curl honours proto3 optional presence: an empty key, expected_offset 0 and a high watermark of 0 are set', async () => {
    const h = await startServer();
    try {
      const conditional = JSON.stringify({ records: [{ key: '', value: 'YQ==' }, { value: 'Yg==' }], expectedOffset: '0' });
      const appended = jsonObjects(await bufCurl(['-d', conditional, url(h, '/wald.v1.WalService/Append')]));
      assert.equal(appended[0]!['lastOffset'], '1');
      const stale = await bufCurl(['-d', conditional, url(h, '/wald.v1.WalService/Append')]).then(
        () => undefined,
        (error: unknown) => String(error),
      );
      assert.match(stale ?? '', /"code": "aborted"/, 'expected_offset 0 is a condition (WAL_OFFSET_MISMATCH)');
      // Without --emit-defaults, only set fields are printed: the empty key and the 0 are.
      const read = jsonObjects(await bufCurl(['-d', '{"fromOffset":"0","limit":1}', url(h, '/wald.v1.WalService/Read')]));
      const [record] = read[0]!['records'] as Record<string, unknown>[];
      assert.equal(record!['key'], '', 'the empty key is printed');
      assert.equal(read[0]!['highWatermark'], '1');
      const second = jsonObjects(await bufCurl(['-d', '{"fromOffset":"1"}', url(h, '/wald.v1.WalService/Read')]));
      assert.equal((second[0]!['records'] as Record<string, unknown>[])[0]!['key'], undefined, 'an absent key is not');

      const empty = await startServer();
      try {
        assert.equal(jsonObjects(await bufCurl(['-d', '{}', url(empty, '/wald.v1.WalService/GetStats')]))[0]!['highWatermark'], undefined);
        await empty.client.append({ records: values(1) });
        const stats = jsonObjects(await bufCurl(['-d', '{}', url(empty, '/wald.v1.WalService/GetStats')]))[0]!;
        assert.equal(stats['highWatermark'], '0');
        assert.equal(stats['latestOffset'], '0');
      } finally {
        await empty.close();
      }
    } finally {
      await h.close();
    }
  });

  test('buf curl reads a TailWal stream through reflection: catch-up, heartbeat, then a live record', async () => {
    const h = await startServer();
    try {
      await h.client.append({ records: [{ value: Buffer.from('a') }, { value: Buffer.from('b') }] });
      const child = spawn(
        BUF,
        ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{"fromOffset":"0"}', url(h, '/wald.v1.WalService/TailWal')],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = once(child, 'exit');
      let output = '';
      let changed: () => void = () => {};
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        changed();
      });
      void exited.then(() => changed());
      const messages = (): Record<string, unknown>[] => jsonObjects(output.slice(0, output.lastIndexOf('\n}\n') + 3));
      const waitFor = async (predicate: (all: Record<string, unknown>[]) => boolean): Promise<Record<string, unknown>[]> => {
        for (let i = 0; i < 10_000 && !predicate(messages()); i++) {
          if (child.exitCode !== null) {
            throw new Error(`buf curl exited early: ${output}`);
          }
          await new Promise<void>((resolve) => {
            changed = resolve;
          });
        }
        return messages();
      };
      try {
        const caughtUp = await waitFor((all) => all.some((m) => m['records'] === undefined));
        const offsets = caughtUp.flatMap((m) => ((m['records'] as { offset?: string }[] | undefined) ?? []).map((r) => r.offset ?? '0'));
        assert.deepEqual(offsets, ['0', '1']);
        await h.client.append({ records: [{ value: Buffer.from('live') }] });
        const withLive = await waitFor((all) => all.some((m) => m['nextOffset'] === '3' && m['records'] !== undefined));
        const live = withLive.find((m) => m['nextOffset'] === '3' && m['records'] !== undefined)!;
        const [record] = live['records'] as { value: string; offset: string }[];
        assert.equal(record!.offset, '2');
        assert.equal(Buffer.from(record!.value, 'base64').toString(), 'live');
      } finally {
        child.kill();
        await exited;
      }
    } finally {
      await h.close();
    }
  });

  test('reflection serves buf’s FileDescriptorProto bytes exactly, with their imports', async () => {
    const h = await startServer();
    try {
      const built = splitDescriptorSet(loadDescriptorSet());
      for (const version of ['v1', 'v1alpha'] as const) {
        const files = await reflectFiles(h, version, 'wald.v1.WalService');
        const names = new Set<string>();
        for (const bytes of files) {
          const match = [...built.entries()].find(([, exact]) => Buffer.compare(Buffer.from(exact), Buffer.from(bytes)) === 0);
          assert.ok(match !== undefined, `${version}: a served file differs from buf's bytes`);
          names.add(match[0]);
        }
        for (const name of ['wald/v1/wal_service.proto', 'wald/v1/append.proto', 'wald/v1/record.proto', 'google/rpc/status.proto']) {
          assert.ok(names.has(name), `${version}: ${name} is served`);
        }
      }
    } finally {
      await h.close();
    }
  });
});
