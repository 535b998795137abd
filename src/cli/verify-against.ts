import type { Metadata } from '@grpc/grpc-js';
import type { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import type { HashRangeResponse } from '../gen/wald/v1/replication.js';
import type { GetStatsResponse } from '../gen/wald/v1/stats.js';
import { CommandFailure, UsageError } from './exit-codes.js';
import { compareLogs, type LogComparison, type RangeHasher } from './log-comparison.js';
import { printJson, printText } from './output.js';
import { formatFields } from './table.js';
import { callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** Offsets per compared range when `--step` is not given. */
export const DEFAULT_VERIFY_STEP = 100_000;

/** The options of `wald verify --against`. */
export interface VerifyAgainstOptions extends UnaryCommandOptions {
  readonly against: string;
  readonly from?: number | undefined;
  readonly to?: number | undefined;
  readonly step?: number | undefined;
}

function stats(client: WalServiceClient, timeoutMs: number): Promise<GetStatsResponse> {
  return callUnary<GetStatsResponse>((metadata: Metadata, callback) => client.getStats({}, metadata, deadlineOptions(timeoutMs), callback));
}

function hasher(client: WalServiceClient, timeoutMs: number): RangeHasher {
  return (fromOffset, toOffset) =>
    callUnary<HashRangeResponse>((metadata, callback) =>
      client.hashRange({ fromOffset: BigInt(fromOffset), toOffset: BigInt(toOffset) }, metadata, deadlineOptions(timeoutMs), callback),
    );
}

/** The offsets both logs hold durably: from the greater first offset to the smaller high watermark + 1. */
function commonRange(a: GetStatsResponse, b: GetStatsResponse): { from: number; to: number } {
  const end = (s: GetStatsResponse): number => (s.highWatermark === undefined ? Number(s.firstOffset) : Number(s.highWatermark) + 1);
  return { from: Math.max(Number(a.firstOffset), Number(b.firstOffset)), to: Math.min(end(a), end(b)) };
}

const hex = (hash: HashRangeResponse): string => Buffer.from(hash.sha256).toString('hex');

function comparisonJson(options: VerifyAgainstOptions, result: LogComparison): Record<string, unknown> {
  const side = (hash: HashRangeResponse) => ({
    sha256: hex(hash),
    from_offset: Number(hash.fromOffset),
    to_offset: Number(hash.toOffset),
    frame_count: Number(hash.frameCount),
    record_count: Number(hash.recordCount),
  });
  const difference = result.difference;
  return {
    server: options.server,
    against: options.against,
    ok: difference === undefined,
    from_offset: result.fromOffset,
    to_offset: result.toOffset,
    step: options.step ?? DEFAULT_VERIFY_STEP,
    ranges_compared: result.rangesCompared,
    frame_count: result.frameCount,
    record_count: result.recordCount,
    first_difference:
      difference === undefined ? null : { offset: difference.offset, server: side(difference.server), against: side(difference.against) },
  };
}

function comparisonText(options: VerifyAgainstOptions, result: LogComparison): string {
  const difference = result.difference;
  const fields: [string, string][] = [
    ['server', options.server],
    ['against', options.against],
    ['offsets', result.toOffset > result.fromOffset ? `${result.fromOffset} to ${result.toOffset - 1}` : `none in common (next ${result.fromOffset})`],
    ['ranges compared', String(result.rangesCompared)],
  ];
  if (difference === undefined) {
    return formatFields([...fields, ['frames', String(result.frameCount)], ['records', String(result.recordCount)]]) + 'ok: the logs agree\n';
  }
  const describe = (hash: HashRangeResponse): string =>
    hash.frameCount === 0n ? 'no frame' : `${hash.frameCount} frame of ${hash.recordCount} records, sha256 ${hex(hash).slice(0, 16)}`;
  return (
    formatFields([...fields, ['server has', describe(difference.server)], ['against has', describe(difference.against)]]) +
    `first difference at offset ${difference.offset}\n`
  );
}

/**
 * `wald verify --against B` (with `--server A`): compares the two servers' logs over the offsets
 * both hold durably (or `--from`/`--to`), range by range with HashRange, naming the first offset
 * that differs (found by bisection). Exits 1 when they differ.
 *
 * @throws UsageError for `--to` not above `--from`; CommandFailure when the logs differ; RpcError
 *   when a call fails (an offset compacted on either side, ...).
 */
export async function verifyAgainst(options: VerifyAgainstOptions): Promise<void> {
  if (options.from !== undefined && options.to !== undefined && options.to < options.from) {
    throw new UsageError(`--to ${options.to} is below --from ${options.from}`);
  }
  const step = options.step ?? DEFAULT_VERIFY_STEP;
  const result = await withClient(options, (server) =>
    withClient({ ...options, server: options.against }, async (against) => {
      const [a, b] = await Promise.all([stats(server, options.timeoutMs), stats(against, options.timeoutMs)]);
      const common = commonRange(a, b);
      const from = options.from ?? common.from;
      const to = Math.max(from, options.to ?? common.to);
      return compareLogs(hasher(server, options.timeoutMs), hasher(against, options.timeoutMs), from, to, step);
    }),
  );
  if (options.json) printJson(comparisonJson(options, result));
  else printText(comparisonText(options, result));
  if (result.difference !== undefined) {
    throw new CommandFailure(`${options.server} and ${options.against} differ from offset ${result.difference.offset}`);
  }
}
