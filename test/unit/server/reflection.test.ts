import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { ServerReflectionRequest, ServerReflectionResponse } from '../../../src/gen/grpc/reflection/v1/reflection.js';
import { DescriptorIndex } from '../../../src/server/descriptor-index.js';
import { createReflectionHandler, loadDescriptorSet } from '../../../src/server/reflection.js';

/**
 * A stand-in for grpc-js's server call: an object-mode Duplex, like `ServerDuplexStreamImpl`,
 * whose transport accepts a written answer only when the test releases it.
 */
class HeldCall extends Duplex {
  readonly answers: ServerReflectionResponse[] = [];
  private readonly held: (() => void)[] = [];

  constructor(writeBufferMessages: number) {
    super({ objectMode: true, writableHighWaterMark: writeBufferMessages, read: () => {} });
  }

  override _write(answer: ServerReflectionResponse, _encoding: BufferEncoding, callback: () => void): void {
    this.answers.push(answer);
    this.held.push(callback);
  }

  /** Lets the transport take every answer written so far. */
  release(): void {
    for (const callback of this.held.splice(0)) {
      callback();
    }
  }
}

describe('the ServerReflectionInfo handler', () => {
  const handler = createReflectionHandler({ descriptors: new DescriptorIndex(loadDescriptorSet()), serviceNames: ['wald.v1.WalService'] });

  test('stops reading requests while the write buffer is full, and reads on after drain', async () => {
    const call = new HeldCall(2);
    const count = 20;
    for (let i = 0; i < count; i++) {
      const request: ServerReflectionRequest = { host: '', messageRequest: { $case: 'listServices', value: String(i) } };
      call.push(request);
    }
    call.push(null);
    let isFinished = false;
    call.on('finish', () => {
      isFinished = true;
    });
    handler(call as unknown as ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>);
    let rounds = 0;
    while (!isFinished) {
      // One turn of the event loop lets the handler run until it waits on the held transport.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.ok(call.writableLength <= 2, `at most the buffer's 2 answers queued, saw ${call.writableLength}`);
      if (call.readableLength > 0) {
        assert.equal(call.isPaused(), true, 'requests wait unread while the answers wait');
      }
      rounds++;
      assert.ok(rounds <= count + 1, `the handler reads on after each drain (${call.answers.length} of ${count} answered)`);
      call.release();
    }
    assert.ok(rounds >= count / 2, `answered in rounds of the buffer size (${rounds} rounds)`);
    assert.deepEqual(
      call.answers.map((answer) => answer.originalRequest?.messageRequest?.value),
      Array.from({ length: count }, (_, i) => String(i)),
    );
  });

  test('refuses to list a service the descriptor set lacks', () => {
    assert.throws(
      () => createReflectionHandler({ descriptors: new DescriptorIndex(loadDescriptorSet()), serviceNames: ['wald.v1.Nope'] }),
      /lacks the services wald\.v1\.Nope/,
    );
  });
});
