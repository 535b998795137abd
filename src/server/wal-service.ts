import type { WalServiceServer } from '../gen/wald/v1/wal_service.js';
import { abort } from './rpc/abort.js';
import { append } from './rpc/append.js';
import { appendStream } from './rpc/append-stream.js';
import { commit } from './rpc/commit.js';
import { compact } from './rpc/compact.js';
import { createSnapshot } from './rpc/create-snapshot.js';
import { deleteSegmentsBefore } from './rpc/delete-segments-before.js';
import { flushAll } from './rpc/flush-all.js';
import { get } from './rpc/get.js';
import { getEpochEnd } from './rpc/get-epoch-end.js';
import { getSnapshot } from './rpc/get-snapshot.js';
import { getStats } from './rpc/get-stats.js';
import { hashRange } from './rpc/hash-range.js';
import { listKeys } from './rpc/list-keys.js';
import { listSnapshots } from './rpc/list-snapshots.js';
import { listTransactions } from './rpc/list-transactions.js';
import { prepare } from './rpc/prepare.js';
import { promote } from './rpc/promote.js';
import { read } from './rpc/read.js';
import { reportFollower } from './rpc/report-follower.js';
import type { RpcAdmission } from './rpc/rpc-admission.js';
import type { RpcTable } from './rpc/rpc-descriptor.js';
import { snapshotKey } from './rpc/snapshot-key.js';
import { stateAt, stateAtRole } from './rpc/state-at.js';
import { sync } from './rpc/sync.js';
import { tailWal, tailWalRole } from './rpc/tail-wal.js';
import { verifySnapshot } from './rpc/verify-snapshot.js';
import type { walServiceDefinition } from './wal-service-definition.js';

/**
 * The RPC table of `wald.v1.WalService`: for each method of the generated definition (under its
 * key), its name, its kind, the least role a bearer token must hold to call it (`auth/role.ts`:
 * `read` reads, `write` appends and syncs, `admin` runs what changes or removes what others rely
 * on), whether a follower serves it or refuses it (`onFollower`: what would write to the log is
 * refused with `WAL_NOT_LEADER`, naming the leader; Sync is served, it only syncs the follower's
 * own copy), its handler (one module per RPC in `rpc/`), and for streams the registry that counts
 * them. Everything the admission decides per RPC is a column
 * here, so an RPC has one line and nothing else to register. A method without an entry, or an
 * entry without a role, does not compile, and `test/unit/server/wal-service.test.ts` checks the
 * table (roles included) against the definition at run time.
 */
export const WAL_SERVICE_RPCS = {
  append: { name: 'Append', kind: 'unary', role: 'write', onFollower: 'refuse', handle: append },
  appendStream: { name: 'AppendStream', kind: 'bidi', role: 'write', onFollower: 'refuse', open: appendStream, streams: (context) => context.appendStreams },
  read: { name: 'Read', kind: 'unary', role: 'read', onFollower: 'serve', handle: read },
  tailWal: { name: 'TailWal', kind: 'server-stream', role: 'read', roleOf: tailWalRole, onFollower: 'serve', open: tailWal, streams: (context) => context.tails },
  getStats: { name: 'GetStats', kind: 'unary', role: 'read', onFollower: 'serve', handle: getStats },
  sync: { name: 'Sync', kind: 'unary', role: 'write', onFollower: 'serve', handle: sync },
  get: { name: 'Get', kind: 'unary', role: 'read', onFollower: 'serve', handle: get },
  listKeys: { name: 'ListKeys', kind: 'unary', role: 'read', onFollower: 'serve', handle: listKeys },
  flushAll: { name: 'FlushAll', kind: 'unary', role: 'admin', onFollower: 'refuse', handle: flushAll },
  snapshotKey: { name: 'SnapshotKey', kind: 'unary', role: 'admin', onFollower: 'refuse', handle: snapshotKey },
  createSnapshot: { name: 'CreateSnapshot', kind: 'unary', role: 'admin', onFollower: 'refuse', handle: createSnapshot },
  listSnapshots: { name: 'ListSnapshots', kind: 'unary', role: 'read', onFollower: 'serve', handle: listSnapshots },
  verifySnapshot: { name: 'VerifySnapshot', kind: 'unary', role: 'admin', onFollower: 'serve', handle: verifySnapshot },
  getSnapshot: { name: 'GetSnapshot', kind: 'server-stream', role: 'read', onFollower: 'serve', open: getSnapshot, streams: (context) => context.snapshotStreams },
  compact: { name: 'Compact', kind: 'unary', role: 'admin', onFollower: 'refuse', handle: compact },
  deleteSegmentsBefore: { name: 'DeleteSegmentsBefore', kind: 'unary', role: 'admin', onFollower: 'refuse', handle: deleteSegmentsBefore },
  stateAt: { name: 'StateAt', kind: 'unary', role: 'read', roleOf: stateAtRole, onFollower: 'serve', handle: stateAt },
  prepare: { name: 'Prepare', kind: 'unary', role: 'write', onFollower: 'refuse', handle: prepare },
  commit: { name: 'Commit', kind: 'unary', role: 'write', onFollower: 'refuse', handle: commit },
  abort: { name: 'Abort', kind: 'unary', role: 'write', onFollower: 'refuse', handle: abort },
  listTransactions: { name: 'ListTransactions', kind: 'unary', role: 'read', onFollower: 'serve', handle: listTransactions },
  getEpochEnd: { name: 'GetEpochEnd', kind: 'unary', role: 'read', onFollower: 'serve', handle: getEpochEnd },
  promote: { name: 'Promote', kind: 'unary', role: 'admin', onFollower: 'serve', handle: promote },
  hashRange: { name: 'HashRange', kind: 'unary', role: 'read', onFollower: 'serve', handle: hashRange },
  // `write`: a report counts towards min_replicas acknowledgements and holds segments back from compaction.
  // Served on a follower too: a chained follower reports to the follower it tails, which lists it.
  reportFollower: { name: 'ReportFollower', kind: 'client-stream', role: 'write', onFollower: 'serve', open: reportFollower, streams: (context) => context.followerReports },
} as const satisfies RpcTable<typeof walServiceDefinition>;

/**
 * The `wald.v1.WalService` implementation to register with `walServiceDefinition`: each entry of
 * {@link WAL_SERVICE_RPCS} bound by `admission`.
 */
export function createWalService(admission: RpcAdmission): WalServiceServer {
  const service: Record<string, ReturnType<RpcAdmission['bind']>> = {};
  for (const [key, rpc] of Object.entries(WAL_SERVICE_RPCS)) {
    service[key] = admission.bind(rpc);
  }
  // Sound by the table's `satisfies` clause: one entry per method, of its kind and message types.
  return service as WalServiceServer;
}
