import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import { credentials, Server, ServerCredentials, status as Status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import {
  ServerReflectionClient as V1ReflectionClient,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../../src/gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionClient as V1AlphaReflectionClient } from '../../src/gen/grpc/reflection/v1alpha/reflection.js';
import { DescriptorIndex, splitDescriptorSet } from '../../src/server/descriptor-index.js';
import { addReflection, loadDescriptorSet } from '../../src/server/reflection.js';
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

type Version = 'v1' | 'v1alpha';
const VERSIONS: readonly Version[] = ['v1', 'v1alpha'];

/** One ServerReflectionInfo stream, asked one request at a time, through the generated client of `version`. */
class ReflectionSession {
  private readonly client: V1ReflectionClient;
  private readonly call: ClientDuplexStream<ServerReflectionRequest, ServerReflectionResponse>;
  private readonly responses: AsyncIterator<ServerReflectionResponse>;

  constructor(address: string, version: Version) {
    const Client = version === 'v1' ? V1ReflectionClient : V1AlphaReflectionClient;
    this.client = new Client(address, credentials.createInsecure());
    this.call = this.client.serverReflectionInfo();
    this.responses = this.call[Symbol.asyncIterator]() as AsyncIterator<ServerReflectionResponse>;
  }

  /** Sends `messageRequest` and resolves with the next response of the stream. */
  async ask(messageRequest: ServerReflectionRequest['messageRequest'], host = ''): Promise<ServerReflectionResponse> {
    this.call.write({ host, messageRequest });
    return this.next();
  }

  async next(): Promise<ServerReflectionResponse> {
    const next = await this.responses.next();
    assert.equal(next.done, false, 'the server ended the stream');
    return next.value;
  }

  write(messageRequest: ServerReflectionRequest['messageRequest']): void {
    this.call.write({ host: '', messageRequest });
  }

  /** Half-closes the stream and expects the server to end it with OK, having nothing more to say. */
  async end(): Promise<void> {
    const status = once(this.call, 'status') as Promise<[StatusObject]>;
    this.call.end();
    assert.equal((await this.responses.next()).done, true, 'nothing after the last answer');
    assert.equal((await status)[0].code, Status.OK);
  }

  /** Cancels the stream if still open and closes the channel; never throws (for `finally`). */
  dispose(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** The file_descriptor_proto of a response, failing on any other kind. */
function filesOf(response: ServerReflectionResponse): Buffer[] {
  assert.equal(response.messageResponse?.$case, 'fileDescriptorResponse', JSON.stringify(response.messageResponse));
  return response.messageResponse.value.fileDescriptorProto;
}

/** The names of served files, each checked byte for byte against buf's descriptor set. */
function namesOf(files: Buffer[], built = splitDescriptorSet(loadDescriptorSet())): string[] {
  return files.map((bytes) => {
    const match = [...built.entries()].find(([, exact]) => Buffer.compare(Buffer.from(exact), bytes) === 0);
    assert.ok(match !== undefined, `a served file differs from buf's bytes: ${fromBinary(FileDescriptorProtoSchema, bytes).name}`);
    return match[0];
  });
}

/** The error_response of a response, failing on any other kind. */
function errorOf(response: ServerReflectionResponse): { errorCode: number; errorMessage: string } {
  assert.equal(response.messageResponse?.$case, 'errorResponse', JSON.stringify(response.messageResponse));
  return response.messageResponse.value;
}

/** A bare grpc-js server serving reflection only, over `set`, on 127.0.0.1:0. */
async function reflectionOnlyServer(set: Uint8Array): Promise<{ address: string; close: () => void }> {
  const server = new Server();
  addReflection(server, { descriptors: new DescriptorIndex(set), serviceNames: [] });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
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
      for (const version of VERSIONS) {
        const session = new ReflectionSession(h.address, version);
        try {
          const names = new Set(namesOf(filesOf(await session.ask({ $case: 'fileContainingSymbol', value: 'wald.v1.WalService' }))));
          for (const name of ['wald/v1/wal_service.proto', 'wald/v1/append.proto', 'wald/v1/record.proto', 'google/rpc/status.proto']) {
            assert.ok(names.has(name), `${version}: ${name} is served`);
          }
          await session.end();
        } finally {
          session.dispose();
        }
      }
    } finally {
      await h.close();
    }
  });

  for (const version of VERSIONS) {
    test(`${version}: answers every request kind on one stream, each with the request echoed`, async () => {
      const h = await startServer();
      const session = new ReflectionSession(h.address, version);
      try {
        const list: ServerReflectionRequest['messageRequest'] = { $case: 'listServices', value: '*' };
        const listed = await session.ask(list, 'wald.example:7070');
        assert.equal(listed.validHost, 'wald.example:7070');
        assert.deepEqual(listed.originalRequest, { host: 'wald.example:7070', messageRequest: list });
        assert.equal(listed.messageResponse?.$case, 'listServicesResponse');
        assert.deepEqual(listed.messageResponse.value.service.map((service) => service.name).sort(), [
          'grpc.health.v1.Health',
          'grpc.reflection.v1.ServerReflection',
          'grpc.reflection.v1alpha.ServerReflection',
          'wald.v1.WalService',
        ]);

        const byName: ServerReflectionRequest['messageRequest'] = { $case: 'fileByFilename', value: 'wald/v1/wal_service.proto' };
        const file = await session.ask(byName);
        assert.deepEqual(file.originalRequest, { host: '', messageRequest: byName });
        const names = namesOf(filesOf(file));
        assert.equal(names[0], 'wald/v1/wal_service.proto', 'the file asked for comes first');
        assert.equal(new Set(names).size, names.length, 'no file twice');
        for (const name of ['wald/v1/record.proto', 'wald/v1/append.proto']) {
          assert.ok(names.includes(name), `the transitive import ${name} is sent along`);
        }

        const symbols: Record<string, string> = {
          'wald.v1.WalService': 'wald/v1/wal_service.proto',
          'wald.v1.WalService.TailWal': 'wald/v1/wal_service.proto',
          'wald.v1.TailWalResponse': 'wald/v1/tail.proto',
          'wald.v1.Record.offset': 'wald/v1/record.proto',
          'wald.v1.RECORD_TYPE_PUT': 'wald/v1/record.proto',
          'grpc.health.v1.HealthCheckResponse.ServingStatus': 'grpc/health/v1/health.proto',
          'grpc.health.v1.Health': 'grpc/health/v1/health.proto',
          'grpc.reflection.v1.ServerReflection': 'grpc/reflection/v1/reflection.proto',
          'grpc.reflection.v1alpha.ServerReflectionRequest': 'grpc/reflection/v1alpha/reflection.proto',
        };
        for (const [symbol, expected] of Object.entries(symbols)) {
          const answer = await session.ask({ $case: 'fileContainingSymbol', value: symbol });
          assert.equal(answer.originalRequest?.messageRequest?.value, symbol);
          assert.equal(namesOf(filesOf(answer))[0], expected, symbol);
        }

        const numbers = await session.ask({ $case: 'allExtensionNumbersOfType', value: 'wald.v1.Record' });
        assert.equal(numbers.messageResponse?.$case, 'allExtensionNumbersResponse');
        assert.deepEqual(numbers.messageResponse.value, { baseTypeName: 'wald.v1.Record', extensionNumber: [] });

        // wald's protos declare no extensions; the positive case is the next test's.
        const extension = await session.ask({ $case: 'fileContainingExtension', value: { containingType: 'wald.v1.Record', extensionNumber: 100 } });
        assert.equal(errorOf(extension).errorCode, Status.NOT_FOUND);
        await session.end();
      } finally {
        session.dispose();
        await h.close();
      }
    });

    test(`${version}: finds extensions in a descriptor set that has them`, async () => {
      const extendable = create(FileDescriptorProtoSchema, {
        name: 'test/extendable.proto',
        package: 'test',
        dependency: ['wald/v1/record.proto'],
        messageType: [
          {
            name: 'Extendable',
            extensionRange: [{ start: 100, end: 200 }],
            extension: [{ name: 'nested', number: 150, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: '.wald.v1.Record', extendee: '.test.Extendable' }],
          },
        ],
        extension: [{ name: 'size', number: 100, label: Label.OPTIONAL, type: Type.INT32, extendee: '.test.Extendable' }],
      });
      const set = Buffer.concat([loadDescriptorSet(), toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [extendable] }))]);
      const server = await reflectionOnlyServer(set);
      const session = new ReflectionSession(server.address, version);
      try {
        const numbers = await session.ask({ $case: 'allExtensionNumbersOfType', value: 'test.Extendable' });
        assert.equal(numbers.messageResponse?.$case, 'allExtensionNumbersResponse');
        assert.deepEqual(numbers.messageResponse.value, { baseTypeName: 'test.Extendable', extensionNumber: [100, 150] });
        const built = splitDescriptorSet(set);
        for (const extensionNumber of [100, 150]) {
          const names = namesOf(filesOf(await session.ask({ $case: 'fileContainingExtension', value: { containingType: 'test.Extendable', extensionNumber } })), built);
          assert.deepEqual(names.slice(0, 2), ['test/extendable.proto', 'wald/v1/record.proto']);
        }
        assert.equal(namesOf(filesOf(await session.ask({ $case: 'fileContainingSymbol', value: 'test.Extendable.nested' })), built)[0], 'test/extendable.proto');
        const missing = await session.ask({ $case: 'fileContainingExtension', value: { containingType: 'test.Extendable', extensionNumber: 101 } });
        assert.equal(errorOf(missing).errorCode, Status.NOT_FOUND);
        await session.end();
      } finally {
        session.dispose();
        server.close();
      }
    });

    test(`${version}: an unknown name is a NOT_FOUND error response, and the stream answers on`, async () => {
      const h = await startServer();
      const session = new ReflectionSession(h.address, version);
      try {
        const unknown: ServerReflectionRequest['messageRequest'][] = [
          { $case: 'fileByFilename', value: 'wald/v1/nope.proto' },
          { $case: 'fileContainingSymbol', value: 'wald.v1.Nope' },
          { $case: 'fileContainingSymbol', value: 'WalService' },
          { $case: 'fileContainingExtension', value: { containingType: 'wald.v1.Nope', extensionNumber: 1 } },
          { $case: 'allExtensionNumbersOfType', value: 'wald.v1.Nope' },
          { $case: 'allExtensionNumbersOfType', value: 'wald.v1.RecordType' },
        ];
        for (const messageRequest of unknown) {
          const answer = await session.ask(messageRequest);
          assert.deepEqual(answer.originalRequest, { host: '', messageRequest });
          const error = errorOf(answer);
          assert.equal(error.errorCode, Status.NOT_FOUND, JSON.stringify(messageRequest));
          assert.match(error.errorMessage, /not found/);
        }
        assert.equal(errorOf(await session.ask(undefined)).errorCode, Status.UNIMPLEMENTED, 'a request of no known kind');
        assert.equal(namesOf(filesOf(await session.ask({ $case: 'fileContainingSymbol', value: 'wald.v1.WalService' })))[0], 'wald/v1/wal_service.proto');
        await session.end();
      } finally {
        session.dispose();
        await h.close();
      }
    });
  }

  test('answers many requests sent before any is read, all and in order', { timeout: 30_000 }, async () => {
    const h = await startServer();
    const session = new ReflectionSession(h.address, 'v1');
    try {
      // One answer read first: a grpc-js client stream paused before its first read never
      // pauses its HTTP/2 stream (docs/api.md), and the server would then see no backpressure.
      await session.ask({ $case: 'listServices', value: '' });
      // About 10 MB of answers, far past the flow-control window and the call's write buffer.
      const count = 500;
      for (let i = 0; i < count; i++) {
        session.write(i % 2 === 0 ? { $case: 'fileByFilename', value: 'wald/v1/wal_service.proto' } : { $case: 'listServices', value: String(i) });
      }
      for (let i = 0; i < count; i++) {
        const answer = await session.next();
        assert.equal(answer.messageResponse?.$case, i % 2 === 0 ? 'fileDescriptorResponse' : 'listServicesResponse', `answer ${i}`);
        if (i % 2 === 1) {
          assert.equal(answer.originalRequest?.messageRequest?.value, String(i));
        }
      }
      await session.end();
    } finally {
      session.dispose();
      await h.close();
    }
  });
});
