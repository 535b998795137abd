import type { Command } from 'commander';
import type { FollowerInfo } from '../gen/wald/v1/replication.js';
import type { GetStatsResponse } from '../gen/wald/v1/stats.js';
import { printJson, printText } from './output.js';
import { isoTime, jsonInteger } from './record-view.js';
import { formatTable } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** One follower as `--json` prints it (`wald followers`, and `followers` of `wald stats --json`). */
export function followerToJson(follower: FollowerInfo): Record<string, unknown> {
  return {
    follower_id: follower.followerId,
    address: follower.address,
    durable_next_offset: jsonInteger(follower.durableNextOffset),
    lag_records: jsonInteger(follower.lagRecords),
    lag_bytes: jsonInteger(follower.lagBytes),
    lag_ms: jsonInteger(follower.lagMs),
    connected_since_ms: jsonInteger(follower.connectedSinceMs),
    connected: follower.connected,
    lease_held_bytes: jsonInteger(follower.leaseHeldBytes),
    lease_lapsed: follower.leaseLapsed,
  };
}

/** What the LEASE column says: held bytes, lapsed, or nothing held. */
function leaseText(follower: FollowerInfo): string {
  if (follower.leaseLapsed) return 'lapsed';
  return follower.leaseHeldBytes > 0n ? `holds ${follower.leaseHeldBytes} bytes` : '-';
}

/** The followers as a text table, or a line saying there are none. */
export function followersText(followers: readonly FollowerInfo[]): string {
  if (followers.length === 0) return 'no followers\n';
  return formatTable(
    ['FOLLOWER', 'ADDRESS', 'DURABLE NEXT', 'LAG RECORDS', 'LAG BYTES', 'LAG MS', 'CONNECTED', 'SINCE', 'LEASE'],
    followers.map((f) => [
      f.followerId,
      f.address === '' ? '-' : f.address,
      f.durableNextOffset.toString(),
      f.lagRecords.toString(),
      f.lagBytes.toString(),
      f.lagMs.toString(),
      f.connected ? 'yes' : 'no',
      f.connectedSinceMs === 0n ? '-' : isoTime(f.connectedSinceMs),
      leaseText(f),
    ]),
  );
}

/** Registers `wald followers`: the followers a leader knows, with their lag and retention leases. */
export function registerFollowersCommand(program: Command): void {
  const command = program
    .command('followers')
    .summary('list the followers of a leader and their lag')
    .description(
      'List the followers the server leads (those that report over ReportFollower or tail its frames): id, address, ' +
        'durable next offset, lag in records, bytes and milliseconds, whether a frames tail is open and since when, and ' +
        'their retention lease (bytes it keeps from compaction, or lapsed). A follower lists the chained followers that tail it.',
    );
  addUnaryClientOptions(command).action(async (options: UnaryCommandOptions) => {
    const stats = await withClient(options, (client) =>
      callUnary<GetStatsResponse>((metadata, callback) => client.getStats({}, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    if (options.json) printJson({ followers: stats.followers.map(followerToJson) });
    else printText(followersText(stats.followers));
  });
}
