/**
 * Calls that arrive while a real WaldServer stops. A client made with grpc-js cannot time that:
 * once `stop()` begins, the server's GOAWAY refuses new streams and the channel reports a bare
 * UNAVAILABLE. A raw HTTP/2 client can: it opens the calls and sends their requests before
 * `stop()`, and half-closes them after it. grpc-js runs unary and server-streaming handlers at the
 * half-close, so each call reaches the admission while the server stops. (AppendStream's handler
 * runs on the headers, before any such point: `test/unit/server/rpc-admission.test.ts` covers
 * bidi streams, and every RPC, with the server's state set by the test.)
 */
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { errorInfoOfStatus } from '../../src/client/rpc-error-info.js';
import { Wal } from '../../src/engine/wal.js';
import { Status as RpcStatus } from '../../src/gen/google/rpc/status.js';
import { AppendRequest } from '../../src/gen/wald/v1/append.js';
import { ReadRequest } from '../../src/gen/wald/v1/read.js';
import { GetStatsRequest, SyncRequest } from '../../src/gen/wald/v1/stats.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import { STATUS_DETAILS_TRAILER } from '../../src/wire/status-details.js';
import { startServer, values } from './support/harness.js';

/** How a raw call ended: the grpc-status, the ErrorInfo reason, and the bytes of messages received. */
interface RawOutcome {
  readonly grpcStatus: number | undefined;
  readonly reason: string | undefined;
  readonly messageBytes: number;
}

/** A gRPC call over a raw HTTP/2 stream with its one request sent but the stream left open. */
interface RawCall {
  /** Half-closes the call: grpc-js runs a unary or server-streaming handler now. */
  end(): void;
  readonly outcome: Promise<RawOutcome>;
}

function openRawCall(session: ClientHttp2Session, method: string, request: Uint8Array): RawCall {
  const stream = session.request({ ':method': 'POST', ':path': `/wald.v1.WalService/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
  const frame = Buffer.alloc(5 + request.length);
  frame.writeUInt32BE(request.length, 1);
  frame.set(request, 5);
  stream.write(frame);
  const outcome = new Promise<RawOutcome>((resolve, reject) => {
    const headers: IncomingHttpHeaders = {};
    let messageBytes = 0;
    stream.on('response', (received) => Object.assign(headers, received));
    stream.on('trailers', (received) => Object.assign(headers, received));
    stream.on('data', (chunk: Buffer) => {
      messageBytes += chunk.length;
    });
    stream.on('error', reject);
    stream.on('close', () => {
      const details = headers[STATUS_DETAILS_TRAILER];
      const info = typeof details === 'string' ? errorInfoOfStatus(RpcStatus.decode(Buffer.from(details, 'base64'))) : undefined;
      const grpcStatus = headers['grpc-status'];
      resolve({ grpcStatus: typeof grpcStatus === 'string' ? Number(grpcStatus) : undefined, reason: info?.reason, messageBytes });
    });
  });
  return { end: () => stream.end(), outcome };
}

describe('calls arriving while the server stops', { timeout: 60_000 }, () => {
  test('unary and server-streaming calls whose request ends after stop() began get UNAVAILABLE WAL_SHUTTING_DOWN', async () => {
    const h = await startServer();
    const session = connect(`http://${h.address}`);
    session.on('error', () => {});
    try {
      await h.client.append({ records: values(2) });
      const calls = {
        Append: openRawCall(session, 'Append', AppendRequest.encode(AppendRequest.fromPartial({ records: values(1, 'late') })).finish()),
        Read: openRawCall(session, 'Read', ReadRequest.encode(ReadRequest.fromPartial({})).finish()),
        GetStats: openRawCall(session, 'GetStats', GetStatsRequest.encode({}).finish()),
        Sync: openRawCall(session, 'Sync', SyncRequest.encode({}).finish()),
        TailWal: openRawCall(session, 'TailWal', TailWalRequest.encode(TailWalRequest.fromPartial({})).finish()),
      };
      // The server answers a PING after the frames sent before it: once the answer is in, every
      // call above is open on the server, so the GOAWAY of stop() leaves them open.
      await new Promise<void>((resolve, reject) => session.ping((error) => (error === null ? resolve() : reject(error))));

      const stopping = h.server.stop();
      assert.equal(h.server.status, 'stopping');
      for (const call of Object.values(calls)) {
        call.end();
      }
      for (const [method, call] of Object.entries(calls)) {
        const outcome = await call.outcome;
        assert.equal(outcome.grpcStatus, status.UNAVAILABLE, method);
        assert.equal(outcome.reason, 'WAL_SHUTTING_DOWN', method);
        assert.equal(outcome.messageBytes, 0, `${method}: no response message`);
      }
      await stopping;
      assert.equal(h.server.status, 'stopped');

      const { wal } = await Wal.open({ dir: h.dir, preallocate: false });
      try {
        assert.equal(wal.nextOffset, 2, 'the refused Append wrote nothing');
      } finally {
        await wal.close();
      }
    } finally {
      session.destroy();
      await h.close();
    }
  });
});
