/**
 * Append-to-subscriber latency: how long a record takes from the moment a client sends its `Append`
 * to the moment a TailWal subscriber receives it. Appender and subscriber live in this process (on
 * two separate connections), so that one clock (`process.hrtime`) times both ends.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { openTailWal } from '../../src/client/open-tail-wal.js';
import { TailWalRequest } from '../../src/gen/wald/v1/tail.js';
import type { TailBatch } from '../../src/wire/tail-response-decoder.js';
import type { WalServiceClient } from '../../src/gen/wald/v1/wal_service.js';
import type { Measurement, Runner } from './runner.js';
import { appendOnce, appendRequestOf } from './service-client.js';
import { percentile } from './summary.js';

/** A latency run gives up after this long, whatever its append count. */
const MAX_LATENCY_RUN_MS = 60_000;

/** The percentiles of one latency run, ms. */
export interface LatencyRun {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The median time from send to the `Append` acknowledgement, ms (the same appends). */
  readonly ackP50Ms: number;
  readonly samples: number;
}

/** Settles with the subscriber's receive time of the record tagged `tag` (`hrtime.bigint()`), or its failure. */
interface Arrival {
  readonly tag: number;
  readonly resolve: (at: bigint) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Each run opens a tail with `from_end`, waits for its first (caught-up) message, then makes
 * `appends` unary appends of one `recordBytes`-byte record, one at a time: the next append is sent
 * only when the previous one is both acknowledged and received by the tail, so that no record
 * queues behind another. A record is recognised by a tag in its first 4 bytes. The run's value is
 * the p50 in ms; every run's percentiles are appended to `into`.
 */
export function appendToTailLatency(
  appender: WalServiceClient,
  subscriber: WalServiceClient,
  appends: number,
  recordBytes: number,
  into: LatencyRun[],
): Runner {
  return {
    run: async (): Promise<Measurement> => {
      const call = openTailWal(subscriber, TailWalRequest.fromPartial({ start: { $case: 'fromEnd', value: true } }));
      let waiting: Arrival | undefined;
      let isCancelled = false;
      const live = new Promise<void>((resolve, reject) => {
        call.on('data', (response: TailBatch) => {
          resolve();
          for (const record of response.records) {
            if (waiting !== undefined && record.value.readUInt32LE(0) === waiting.tag) {
              const arrival = waiting;
              waiting = undefined;
              arrival.resolve(process.hrtime.bigint());
            }
          }
        });
        call.on('error', (error: ServiceError) => {
          if (isCancelled && error.code === status.CANCELLED) return;
          reject(error);
          waiting?.reject(error);
          waiting = undefined;
        });
      });
      const latenciesMs: number[] = [];
      const acksMs: number[] = [];
      try {
        await live;
        const deadline = performance.now() + MAX_LATENCY_RUN_MS;
        for (let tag = 1; tag <= appends && performance.now() < deadline; tag++) {
          const request = appendRequestOf(Buffer.alloc(recordBytes, 0x61), 1);
          request.records[0]!.value.writeUInt32LE(tag, 0);
          const received = new Promise<bigint>((resolve, reject) => {
            waiting = { tag, resolve, reject };
          });
          const sentAt = process.hrtime.bigint();
          const acked = appendOnce(appender, request).then(() => process.hrtime.bigint());
          const [receivedAt, ackedAt] = await Promise.all([received, acked]);
          latenciesMs.push(Number(receivedAt - sentAt) / 1e6);
          acksMs.push(Number(ackedAt - sentAt) / 1e6);
        }
      } finally {
        isCancelled = true;
        call.cancel();
      }
      const run: LatencyRun = {
        p50Ms: percentile(latenciesMs, 50),
        p99Ms: percentile(latenciesMs, 99),
        maxMs: percentile(latenciesMs, 100),
        ackP50Ms: percentile(acksMs, 50),
        samples: latenciesMs.length,
      };
      into.push(run);
      return { value: run.p50Ms, records: latenciesMs.length };
    },
    close: async () => {
      appender.close();
      subscriber.close();
    },
  };
}
