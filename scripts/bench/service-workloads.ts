/**
 * The throughput workloads of the service part, each a {@link Runner} driving one client against one
 * server process (wald or the no-op baseline) and bounded by time and by count: unary appends at a
 * fixed concurrency, pipelined appends on one AppendStream, and a TailWal catch-up.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { AppendRequest, AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import { openTailWal } from '../../src/client/open-tail-wal.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import type { TailBatch } from '../../src/wire/tail-response-decoder.js';
import type { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import type { Measurement, Runner } from './runner.js';
import { appendOnce, fsyncCount } from './service-client.js';

/** Most calls one unary caller makes in one measurement, whatever its time bound. */
const MAX_CALLS_PER_CALLER = 10_000_000;
/** Most messages one AppendStream measurement sends, whatever its time bound. */
const MAX_STREAM_MESSAGES = 10_000_000;
/** A catch-up pass gives up (and fails) after this long, whatever its record count. */
const MAX_TAIL_PASS_MS = 120_000;

function recordsOf(request: AppendRequest): number {
  return request.records.length;
}

/** Closes `client` when the runner is closed. */
function closing(client: WalServiceClient): () => Promise<void> {
  return async () => client.close();
}

/**
 * `concurrency` callers on one client channel, each awaiting its unary `Append` of `request` before
 * sending the next: `concurrency` calls are always in flight. Counts the server's fsyncs.
 */
export function unaryAppends(client: WalServiceClient, request: AppendRequest, concurrency: number): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const fsyncsBefore = await fsyncCount(client);
      const start = performance.now();
      const deadline = start + runMs;
      let calls = 0;
      const caller = async (): Promise<void> => {
        for (let i = 0; i < MAX_CALLS_PER_CALLER && performance.now() < deadline; i++) {
          await appendOnce(client, request);
          calls++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, caller));
      const seconds = (performance.now() - start) / 1000;
      const records = calls * recordsOf(request);
      return { value: records / seconds, records, fsyncs: (await fsyncCount(client)) - fsyncsBefore };
    },
    close: closing(client),
  };
}

/**
 * One `AppendStream` per measurement: `request` is sent again and again with at most `window`
 * messages unanswered (and waiting for `'drain'` whenever `write()` returns false); after `runMs`
 * the client half-closes and waits for the remaining answers. The rate counts answered records
 * up to the last answer. Counts the server's fsyncs.
 */
export function streamedAppends(client: WalServiceClient, request: AppendRequest, window: number): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const fsyncsBefore = await fsyncCount(client);
      const start = performance.now();
      const deadline = start + runMs;
      const call = client.appendStream();
      let sent = 0;
      let answered = 0;
      let lastAnswerAt = start;
      let isWaitingForDrain = false;
      let hasEnded = false;
      const done = new Promise<void>((resolve, reject) => {
        const pump = (): void => {
          isWaitingForDrain = false;
          while (!hasEnded && sent - answered < window) {
            if (sent >= MAX_STREAM_MESSAGES || performance.now() >= deadline) {
              hasEnded = true;
              call.end();
              return;
            }
            const hasRoom = call.write({ requestId: BigInt(sent), append: request, appends: [] });
            sent++;
            if (!hasRoom) {
              isWaitingForDrain = true;
              call.once('drain', pump);
              return;
            }
          }
        };
        call.on('data', (response: AppendStreamResponse) => {
          if (response.result?.$case !== 'appended') {
            call.cancel();
            reject(new Error(`append ${response.requestId} failed: ${JSON.stringify(response.result?.value)}`));
            return;
          }
          answered++;
          lastAnswerAt = performance.now();
          if (!isWaitingForDrain) pump();
        });
        call.on('end', resolve);
        call.on('error', reject);
        pump();
      });
      await done;
      if (answered !== sent) throw new Error(`AppendStream answered ${answered} of ${sent} appends`);
      const records = answered * recordsOf(request);
      return { value: records / ((lastAnswerAt - start) / 1000), records, fsyncs: (await fsyncCount(client)) - fsyncsBefore };
    },
    close: closing(client),
  };
}

/** What the last pass of a {@link tailCatchUp} runner saw. */
export interface TailFacts {
  /** Messages with records. */
  messages: number;
  /** From the call's start to the first record, ms. */
  firstRecordMs: number;
}

/**
 * One TailWal per measurement, from offset 0 with `request`'s batch bounds, decoded by wald's own
 * client codec (`openTailWal`, as a follower would), read with a `'data'` handler until `records` records have arrived; then the call is cancelled. The rate counts the
 * records after the first message over the time from the first message to the last: "first record
 * to last record received". Checks that each message continues where the previous one stopped.
 */
export function tailCatchUp(client: WalServiceClient, records: number, request: Pick<TailWalRequest, 'maxRecords' | 'maxBytes'>, facts: TailFacts): Runner {
  const tailRequest = TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n }, ...request });
  return {
    run: async (): Promise<Measurement> => {
      const start = performance.now();
      const call = openTailWal(client, tailRequest);
      let received = 0;
      let firstBatch = 0;
      let firstAt = 0;
      let lastAt = 0;
      let messages = 0;
      let isDone = false;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`tail caught up ${received} of ${records} records in ${MAX_TAIL_PASS_MS} ms`)), MAX_TAIL_PASS_MS);
        const finish = (error?: Error): void => {
          if (isDone) return;
          isDone = true;
          clearTimeout(timer);
          call.cancel();
          if (error === undefined) resolve();
          else reject(error);
        };
        call.on('data', (response: TailBatch) => {
          const count = response.records.length;
          if (count === 0 || isDone) return;
          if (response.nextOffset !== received + count) {
            finish(new Error(`tail message ends at ${response.nextOffset}, expected ${received + count}`));
            return;
          }
          if (messages++ === 0) {
            firstAt = performance.now();
            firstBatch = count;
          }
          received += count;
          if (received >= records) {
            lastAt = performance.now();
            finish();
          }
        });
        call.on('error', (error: ServiceError) => {
          if (!(isDone && error.code === status.CANCELLED)) finish(error);
        });
      });
      facts.messages = messages;
      facts.firstRecordMs = firstAt - start;
      const measured = received - firstBatch;
      return { value: measured / ((lastAt - firstAt) / 1000), records: received };
    },
    close: closing(client),
  };
}
