import type { HashRangeResponse } from '../gen/wald/v1/replication.js';

/** One side of a comparison: how to hash a range of its log. */
export type RangeHasher = (fromOffset: number, toOffset: number) => Promise<HashRangeResponse>;

/** Where two logs first differ: the narrowest range found, and each side's hash of it. */
export interface LogDifference {
  /** The first offset whose frame differs (the base offset of the first frame in the narrowest differing range). */
  readonly offset: number;
  readonly fromOffset: number;
  readonly toOffset: number;
  readonly server: HashRangeResponse;
  readonly against: HashRangeResponse;
}

/** What a comparison found. */
export interface LogComparison {
  readonly fromOffset: number;
  readonly toOffset: number;
  /** Ranges of `step` offsets compared (the bisection's calls not counted). */
  readonly rangesCompared: number;
  /** Frames and records of the ranges found equal. */
  readonly frameCount: number;
  readonly recordCount: number;
  /** The first difference; undefined when the logs agree over the whole range. */
  readonly difference: LogDifference | undefined;
}

/** Whether two hashes of the same range say the same frames. */
function isSame(a: HashRangeResponse, b: HashRangeResponse): boolean {
  return Buffer.from(a.sha256).equals(Buffer.from(b.sha256)) && a.frameCount === b.frameCount && a.recordCount === b.recordCount && a.toOffset === b.toOffset;
}

/**
 * Compares two logs over [`fromOffset`, `toOffset`) in ranges of `step` offsets (HashRange on
 * both, as etcd's HashKV), and in the first range that differs, narrows down by bisection to the
 * first offset whose frame differs: the halves are hashed on both sides, the first half that
 * differs is kept, until one offset is left. Frames count in the range of their base offset, so a
 * frame of several records is found at its base offset.
 */
export async function compareLogs(server: RangeHasher, against: RangeHasher, fromOffset: number, toOffset: number, step: number): Promise<LogComparison> {
  let rangesCompared = 0;
  let frameCount = 0;
  let recordCount = 0;
  for (let start = fromOffset; start < toOffset; start += step) {
    const end = Math.min(start + step, toOffset);
    const [a, b] = await Promise.all([server(start, end), against(start, end)]);
    rangesCompared++;
    if (!isSame(a, b)) {
      return { fromOffset, toOffset, rangesCompared, frameCount, recordCount, difference: await bisect(server, against, start, end, a, b) };
    }
    frameCount += Number(a.frameCount);
    recordCount += Number(a.recordCount);
  }
  return { fromOffset, toOffset, rangesCompared, frameCount, recordCount, difference: undefined };
}

/** Narrows [from, to), whose hashes `a` and `b` differ, to its first differing offset. */
async function bisect(server: RangeHasher, against: RangeHasher, from: number, to: number, a: HashRangeResponse, b: HashRangeResponse): Promise<LogDifference> {
  let low = from;
  let high = to;
  let hashes = [a, b] as const;
  // Each turn halves the range: at most 53 turns for any safe offsets.
  while (high - low > 1) {
    const middle = low + Math.floor((high - low) / 2);
    const [left, right] = await Promise.all([server(low, middle), against(low, middle)]);
    if (!isSame(left, right)) {
      high = middle;
      hashes = [left, right];
    } else {
      low = middle;
      hashes = await Promise.all([server(low, high), against(low, high)]);
    }
  }
  return { offset: low, fromOffset: low, toOffset: high, server: hashes[0], against: hashes[1] };
}
