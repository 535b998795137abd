/**
 * The workloads run against wald: appenders (sequential, concurrent, pipelined) and readers. Each
 * is a {@link Runner}: bounded by time and by count, and counting the engine's fsyncs.
 */
import { performance } from 'node:perf_hooks';
import type { AppendRecord, Wal } from '../../src/index.js';
import type { Measurement, Runner } from './runner.js';

/** Most appends one appender makes in one measurement, whatever its time bound. */
const MAX_APPENDS_PER_APPENDER = 10_000_000;
/** A read pass gives up after this long, whatever its record count. */
const MAX_READ_PASS_MS = 120_000;

function finish(wal: Wal, start: number, records: number, fsyncsBefore: number): Measurement {
  const seconds = (performance.now() - start) / 1000;
  return { value: records / seconds, records, fsyncs: wal.stats().io.fsyncs - fsyncsBefore };
}

/**
 * `appenders` async loops, each awaiting `wal.append(batch)` before its next one: (a) is 1 appender
 * of 1 record, (b) 64 appenders of 1 record, (c) 16 appenders of 64 records. `close` closes the log.
 */
export function concurrentAppends(wal: Wal, batch: readonly AppendRecord[], appenders: number): Runner {
  return {
    run: async (runMs) => {
      const fsyncsBefore = wal.stats().io.fsyncs;
      const start = performance.now();
      const deadline = start + runMs;
      let records = 0;
      const appender = async (): Promise<void> => {
        for (let i = 0; i < MAX_APPENDS_PER_APPENDER && performance.now() < deadline; i++) {
          await wal.append(batch);
          records += batch.length;
        }
      };
      const loops: Promise<void>[] = [];
      for (let i = 0; i < appenders; i++) loops.push(appender());
      await Promise.all(loops);
      return finish(wal, start, records, fsyncsBefore);
    },
    close: () => wal.close(),
  };
}

/**
 * (d) Pipelining: `window` appends of `batch` issued without awaiting any, then awaited together,
 * again and again. Under `none` one flush writes a whole window with one `writev`.
 */
export function pipelinedAppends(wal: Wal, batch: readonly AppendRecord[], window: number): Runner {
  return {
    run: async (runMs) => {
      const fsyncsBefore = wal.stats().io.fsyncs;
      const start = performance.now();
      const deadline = start + runMs;
      let records = 0;
      const pending: Promise<unknown>[] = new Array<Promise<unknown>>(window);
      for (let round = 0; round < MAX_APPENDS_PER_APPENDER && performance.now() < deadline; round++) {
        for (let i = 0; i < window; i++) pending[i] = wal.append(batch);
        await Promise.all(pending);
        records += window * batch.length;
      }
      return finish(wal, start, records, fsyncsBefore);
    },
    close: () => wal.close(),
  };
}

/**
 * {@link pipelinedAppends} on a log in memory: the same workload, but before each run (not timed)
 * the sealed segments of the runs before are deleted, so the process holds at most one run's
 * records (about 1 GB at 3M records/s for 2 s) instead of every run's.
 */
export function pipelinedAppendsInMemory(wal: Wal, batch: readonly AppendRecord[], window: number): Runner {
  const runner = pipelinedAppends(wal, batch, window);
  return {
    run: async (runMs) => {
      await wal.deleteSegmentsBefore(wal.nextOffset);
      return runner.run(runMs);
    },
    close: () => runner.close(),
  };
}

/**
 * (e) One pass over the first `records` records with `wal.read` in pages of `page`, touching every
 * value's length so that nothing is skipped.
 */
export function pagedRead(wal: Wal, records: number, page: number): Runner {
  return {
    run: async () => {
      const start = performance.now();
      let next = 0;
      let bytes = 0;
      while (next < records && performance.now() - start < MAX_READ_PASS_MS) {
        const got = await wal.read(next, { limit: Math.min(page, records - next) });
        if (got.length === 0) throw new Error(`read(${next}) returned nothing below ${records}`);
        for (const record of got) bytes += record.value.length;
        next = got[got.length - 1]!.offset + 1;
      }
      if (bytes === 0) throw new Error('read no bytes');
      return { value: next / ((performance.now() - start) / 1000), records: next };
    },
    close: async () => {},
  };
}

/** (e) One pass over the first `records` records with the `wal.range` iterator. */
export function rangeRead(wal: Wal, records: number): Runner {
  return {
    run: async () => {
      const start = performance.now();
      let count = 0;
      let bytes = 0;
      for await (const record of wal.range(0, records)) {
        bytes += record.value.length;
        count++;
        if ((count & 0xffff) === 0 && performance.now() - start > MAX_READ_PASS_MS) break;
      }
      if (count !== records || bytes === 0) throw new Error(`range read ${count} of ${records} records`);
      return { value: count / ((performance.now() - start) / 1000), records: count };
    },
    close: async () => {},
  };
}
