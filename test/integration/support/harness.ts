/**
 * A real wald server on 127.0.0.1:0 over a real temp data directory, and a real client made from
 * the generated stubs, for the integration tests. Under `WALD_TEST_STORAGE=memory`
 * (test/support/test-storage.ts) the server runs on a `MemoryStorage` instead, its data directory
 * is only a name, and `close()` fails when anything was written there.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { credentials, type ChannelOptions, type ClientDuplexStream, type ClientReadableStream } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { isServiceError, rpcErrorInfoOf, type RpcErrorInfo } from '../../../src/client/rpc-error-info.js';
import type { WalOptions } from '../../../src/engine/wal-options.js';
import { AppendRequest, type AppendResponse, type AppendStreamRequest, type AppendStreamResponse } from '../../../src/gen/wald/v1/append.js';
import {
  CompactRequest,
  DeleteSegmentsBeforeRequest,
  type CompactResponse,
  type DeleteSegmentsBeforeResponse,
} from '../../../src/gen/wald/v1/compaction.js';
import { ReadRequest, type ReadResponse } from '../../../src/gen/wald/v1/read.js';
import { GetRequest, ListKeysRequest, type FlushAllResponse, type GetResponse, type ListKeysResponse } from '../../../src/gen/wald/v1/state.js';
import type { GetStatsResponse, SyncResponse } from '../../../src/gen/wald/v1/stats.js';
import { TailWalRequest, type TailWalResponse } from '../../../src/gen/wald/v1/tail.js';
import { WalServiceClient } from '../../../src/gen/wald/v1/wal_service.js';
import type { ServerOptions } from '../../../src/server/server-options.js';
import { WaldServer } from '../../../src/server/wald-server.js';
import { testStorage } from '../../support/test-storage.js';

/** The typed, promise-based face of the generated client that the tests use. */
export class WalTestClient {
  readonly raw: WalServiceClient;

  /** @param options extra channel options, e.g. `grpc.use_local_subchannel_pool` for a connection of its own. */
  constructor(address: string, options: ChannelOptions = {}) {
    this.raw = new WalServiceClient(address, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      ...options,
    });
  }

  append(request: Parameters<typeof AppendRequest.fromPartial>[0]): Promise<AppendResponse> {
    return new Promise((resolve, reject) => {
      this.raw.append(AppendRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  read(request: Parameters<typeof ReadRequest.fromPartial>[0]): Promise<ReadResponse> {
    return new Promise((resolve, reject) => {
      this.raw.read(ReadRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  getStats(): Promise<GetStatsResponse> {
    return new Promise((resolve, reject) => {
      this.raw.getStats({}, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  sync(): Promise<SyncResponse> {
    return new Promise((resolve, reject) => {
      this.raw.sync({}, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  get(request: Parameters<typeof GetRequest.fromPartial>[0]): Promise<GetResponse> {
    return new Promise((resolve, reject) => {
      this.raw.get(GetRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  listKeys(request: Parameters<typeof ListKeysRequest.fromPartial>[0]): Promise<ListKeysResponse> {
    return new Promise((resolve, reject) => {
      this.raw.listKeys(ListKeysRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  flushAll(): Promise<FlushAllResponse> {
    return new Promise((resolve, reject) => {
      this.raw.flushAll({}, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  tail(request: Parameters<typeof TailWalRequest.fromPartial>[0]): ClientReadableStream<TailWalResponse> {
    return this.raw.tailWal(TailWalRequest.fromPartial(request));
  }

  appendStream(): ClientDuplexStream<AppendStreamRequest, AppendStreamResponse> {
    return this.raw.appendStream();
  }

  compact(request: Parameters<typeof CompactRequest.fromPartial>[0] = {}): Promise<CompactResponse> {
    return new Promise((resolve, reject) => {
      this.raw.compact(CompactRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  deleteSegmentsBefore(request: Parameters<typeof DeleteSegmentsBeforeRequest.fromPartial>[0]): Promise<DeleteSegmentsBeforeResponse> {
    return new Promise((resolve, reject) => {
      this.raw.deleteSegmentsBefore(DeleteSegmentsBeforeRequest.fromPartial(request), (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** What {@link startServer} returns. */
export interface Harness {
  readonly server: WaldServer;
  readonly client: WalTestClient;
  readonly address: string;
  readonly port: number;
  readonly dir: string;
  /** Log lines the server wrote (JSON objects), for tests about logging. */
  readonly logLines: readonly Record<string, unknown>[];
  /** Stops the server (if still running), closes the client, removes the data directory. */
  close(): Promise<void>;
}

/** Options of {@link startServer}. */
export interface HarnessOptions {
  readonly server?: ServerOptions;
  /** Engine options besides `dir`; default: no preallocation, `always` sync. */
  readonly wal?: Omit<WalOptions, 'dir'>;
}

function capturingLogger(lines: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
      }
      callback();
    },
  });
  return pino({ level: 'info' }, sink);
}

/**
 * Starts a server on 127.0.0.1:0 over a fresh temp directory (or, under memory storage, a fresh
 * name of one that is never created), and a client for it.
 */
export async function startServer(options: HarnessOptions = {}): Promise<Harness> {
  const storage = options.wal?.storage ?? testStorage();
  const inMemory = storage !== undefined && storage !== 'disk';
  const dir = inMemory ? join(tmpdir(), `wald-it-memory-${randomUUID()}`) : mkdtempSync(join(tmpdir(), 'wald-it-'));
  const logLines: Record<string, unknown>[] = [];
  try {
    const { server } = await WaldServer.open(
      { preallocate: false, ...options.wal, storage, dir },
      { ...options.server, listen: '127.0.0.1:0' },
      capturingLogger(logLines),
    );
    const port = await server.start();
    const address = `127.0.0.1:${port}`;
    const client = new WalTestClient(address);
    return {
      server,
      client,
      address,
      port,
      dir,
      logLines,
      async close() {
        client.close();
        await server.stop();
        if (inMemory && existsSync(dir)) {
          rmSync(dir, { recursive: true, force: true });
          throw new Error(`a server on memory storage wrote to its data directory ${dir}`);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A failed call's status and ErrorInfo, all present (what {@link rpcErrorOf} checks). */
export interface RpcErrorView extends RpcErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly statusCode: number;
}

/**
 * The status code and ErrorInfo (from `grpc-status-details-bin`, decoded by the client's
 * {@link rpcErrorInfoOf}) of a gRPC error; throws when `error` is not one or carries no ErrorInfo.
 */
export function rpcErrorOf(error: unknown): RpcErrorView {
  if (!isServiceError(error)) {
    throw new Error(`not a gRPC error: ${String(error)}`);
  }
  const info = rpcErrorInfoOf(error);
  const { reason, domain, statusCode } = info;
  if (reason === undefined || domain === undefined || statusCode === undefined) {
    throw new Error(`no ErrorInfo in a grpc-status-details-bin trailer on ${error.code} ${error.details}`);
  }
  return { ...info, reason, domain, statusCode };
}

/** Awaits a call expected to fail and returns its status and ErrorInfo. */
export async function failureOf(call: Promise<unknown>): Promise<RpcErrorView> {
  try {
    await call;
  } catch (error) {
    return rpcErrorOf(error);
  }
  throw new Error('the call succeeded but was expected to fail');
}

/** Pulls messages one at a time from a server stream; `next()` rejects with the stream's error. */
export class StreamReader<T> {
  private readonly iterator: AsyncIterator<T>;

  constructor(stream: AsyncIterable<T>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** The next message; throws when the stream ended (OK) or failed (its error). */
  async next(): Promise<T> {
    const result = await this.iterator.next();
    if (result.done === true) {
      throw new Error('the stream ended');
    }
    return result.value;
  }

  /** Awaits the stream's end; returns its error (or undefined when it ended OK), skipping messages (at most `limit`). */
  async end(limit = 100_000): Promise<unknown> {
    try {
      for (let i = 0; i < limit; i++) {
        if ((await this.iterator.next()).done === true) {
          return undefined;
        }
      }
      throw new Error(`the stream did not end within ${limit} messages`);
    } catch (error) {
      return error;
    }
  }
}

/** `count` records with values `prefix0`, `prefix1`, ... */
export function values(count: number, prefix = 'v'): { value: Buffer }[] {
  return Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${prefix}${i}`) }));
}
