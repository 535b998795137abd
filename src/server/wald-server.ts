import { Server, type ChannelOptions } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { forgetUnwatchedServices } from './bounded-health.js';
import { pino, type Logger } from 'pino';
import type { RecoveryReport } from '../engine/types.js';
import { Wal } from '../engine/wal.js';
import type { WalOptions } from '../engine/wal-options.js';
import { CompactionScheduler } from '../state/compaction-scheduler.js';
import { Compactor } from '../state/compactor.js';
import { PointInTimeReplays } from '../state/point-in-time-replays.js';
import { StateKeeper, type StateRecoveryReport } from '../state/state-keeper.js';
import { resolveStateOptions } from '../state/state-options.js';
import { openStorage } from '../engine/storage-options.js';
import type { Storage } from '../storage/storage.js';
import type { AppendStreamSession } from './append-stream.js';
import { DescriptorIndex } from './descriptor-index.js';
import { FollowerRegistry } from './followers/follower-registry.js';
import { FrameTailStream } from './frame-tail-stream.js';
import { ReplicaAcks } from './followers/replica-acks.js';
import type { ReportFollowerSession } from './followers/report-follower-session.js';
import { MetricsListener } from './metrics/metrics-listener.js';
import { ServerEvents } from './metrics/server-events.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { addReflection, loadDescriptorSet } from './reflection.js';
import type { SnapshotSendStream } from './snapshot-send-stream.js';
import { ReplicationState } from './replication-state.js';
import { RpcAdmission } from './rpc/rpc-admission.js';
import { METRICS_OFF, SERVER_DEFAULTS, resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './server-options.js';
import { ServerSecurity, type SecurityReloadReport } from './server-security.js';
import { enforceKeepalive, type KeepaliveEnforcement } from './keepalive-enforcement.js';
import { grpcJsRefusalsInterceptor } from './grpc-js-refusals.js';
import { grantReceiveWindow, type ReceiveWindowGrant } from './receive-window.js';
import { walServiceDefinition } from './wal-service-definition.js';
import { StreamRegistry } from './stream-registry.js';
import { TailQueueBudget } from './tail-queue-budget.js';
import type { TailStream } from './tail-stream.js';
import { createWalService } from './wal-service.js';

/** The full name of wald's service, as health checks and reflection know it. */
export const WAL_SERVICE_NAME = 'wald.v1.WalService';

/**
 * The health service name of wald's writes: `SERVING` on a leader that serves, `NOT_SERVING` on a
 * follower (it refuses appends with `WAL_NOT_LEADER`) and while the server starts or stops. A load
 * balancer that routes appends probes this name; reads probe {@link WAL_SERVICE_NAME}, which a
 * follower serves.
 */
export const WAL_WRITE_HEALTH_NAME = 'wald.v1.WalService.Write';

/** The full name of the health service, as reflection lists it. */
const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** Lifecycle of a {@link WaldServer}. */
export type WaldServerStatus = 'created' | 'starting' | 'serving' | 'stopping' | 'stopped';

/** What a {@link WaldServer} is made of. */
export interface WaldServerInit {
  /** The open log to serve. The server owns it from now on: `stop()` syncs and closes it. */
  readonly wal: Wal;
  /** The key-value view kept over `wal`. The server owns it too: `stop()` closes it before the log. */
  readonly state: StateKeeper;
  readonly options?: ServerOptions | undefined;
  /** JSON logger; default: pino at `info` on stdout. */
  readonly logger?: Logger | undefined;
  /** The file-system port of `wal` and its snapshots (compaction deletes through it); default: the log's own (`wal.storage`). */
  readonly storage?: Storage | undefined;
  /** Clock in ms for compaction (retention ages, the minimum interval): the log's own; tests inject one. */
  readonly clock?: (() => number) | undefined;
  /**
   * The events the log was opened to report to (its `WalOptions.observer` is their
   * `walObserver()`), with the metrics they count in. `WaldServer.open` makes them; without them the
   * server makes its own, and the engine's figures (group commits, fsyncs, segment rolls, write
   * states) are missing from the metrics and logs.
   */
  readonly events?: ServerEvents | undefined;
  /**
   * The server's replication role; default: a leader. A follower (src/replication) passes one that
   * names its leader and can stop it when the server is promoted.
   */
  readonly replication?: ReplicationState | undefined;
}

/**
 * The wald gRPC server: `wald.v1.WalService` over one `Wal`, plus `grpc.health.v1.Health` and
 * server reflection (v1 and v1alpha).
 *
 * ```ts
 * const { server } = await WaldServer.open({ dir: './data' }, { listen: '127.0.0.1:0' });
 * const port = await server.start();
 * // ...
 * await server.stop(); // ends tails with UNAVAILABLE, syncs and closes the log
 * ```
 */
export class WaldServer {
  /** Open TailWal streams (limit `maxTailStreams`). */
  readonly tails: StreamRegistry<TailStream>;
  /** Message bytes all tails together hold now, waiting for their transports (limit `maxTotalTailQueueBytes`). */
  readonly tailQueueBudget: TailQueueBudget;
  /** Open AppendStream streams (limit `maxAppendStreams`). */
  readonly appendStreams: StreamRegistry<AppendStreamSession>;
  /** Open GetSnapshot streams (limit `maxSnapshotStreams`), ended at shutdown. */
  readonly snapshotStreams: StreamRegistry<SnapshotSendStream>;
  /** The followers this server leads (ReportFollower, frames tails): GetStats, min_replicas, retention leases. */
  readonly followers: FollowerRegistry;
  /** Open ReportFollower streams (limit `replication.maxFollowers`), ended at shutdown. */
  readonly followerReports: StreamRegistry<ReportFollowerSession>;
  /** The resolved options. */
  readonly options: ResolvedServerOptions;
  /** The log served; owned by the server, closed by {@link stop}. */
  readonly wal: Wal;
  /** The key-value view of the log (Get, ListKeys, FlushAll); owned by the server, closed by {@link stop}. */
  readonly state: StateKeeper;
  /** Compaction of the log (Compact, DeleteSegmentsBefore). */
  readonly compactor: Compactor;
  /** States at points in time (StateAt), built apart from the live view. */
  readonly pointInTime: PointInTimeReplays;
  /** Automatic compaction (`compaction.enabled`): started by {@link start}, stopped by {@link stop}. */
  readonly compactionScheduler: CompactionScheduler;
  /** The server's notable events, logged and (with `metricsListen` on) counted; snapshots and compactions report here. */
  readonly events: ServerEvents;
  /** The server's Prometheus metrics; undefined when `metricsListen` is `off`. */
  readonly metrics: ServerMetrics | undefined;
  /** Leader or follower (refusing writes); a promotion turns a follower into a leader. */
  readonly replication: ReplicationState;
  private readonly logger: Logger;
  private readonly grpcServer: Server;
  /** The TLS files and the auth file, read by `start()` and `reloadSecurity()`. */
  private readonly security: ServerSecurity;
  private metricsListener: MetricsListener | undefined;
  private boundMetricsPort: number | undefined;
  /** @internal Exposed for tests of its watchers (bounded-health.ts). */
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [WAL_SERVICE_NAME]: 'NOT_SERVING', [WAL_WRITE_HEALTH_NAME]: 'NOT_SERVING' });
  private statusValue: WaldServerStatus = 'created';
  private boundPort: number | undefined;
  private receiveWindowGrant: ReceiveWindowGrant | undefined;
  private keepaliveEnforcementValue: KeepaliveEnforcement | undefined;
  private stopped: Promise<void> | undefined;
  /**
   * Turns the write health `SERVING` when a follower is promoted while this server serves, and
   * starts what appends on its own on a leader only: the `txn_timeout_ms` timer and automatic
   * compaction (on a follower they would append at offsets its leader's frames must fill).
   */
  private readonly onPromoted = (): void => {
    if (this.statusValue !== 'serving') return;
    this.health.setStatus(WAL_WRITE_HEALTH_NAME, 'SERVING');
    this.state.startTxnTimeout();
    this.compactionScheduler.start();
  };

  /**
   * Opens the log at `walOptions.dir` (recovering it), rebuilds its key-value view (the newest
   * snapshot that verifies in `options.state.snapshotDir`, then the log after it), and makes a
   * server for both, with the log's size limits passed on to the server's checks. Snapshots that
   * could not be used are logged as warnings; both recovery reports are returned (and, with
   * `metricsListen` on, kept in the metrics). The log is opened with the server's own observer
   * (`walOptions.observer` is replaced), which logs segment rolls and write-state changes and
   * feeds the metrics.
   *
   * Rejects with the errors of `Wal.open` (`WAL_LOCKED`, `WAL_CORRUPTION`, ...), of
   * `StateKeeper.open` (`WAL_STATE_LOST`, ...) and `TypeError` / `RangeError` for bad options (the
   * log is closed again then).
   */
  static async open(
    walOptions: WalOptions,
    options: ServerOptions = {},
    logger?: Logger,
    replication?: ReplicationState,
  ): Promise<{ server: WaldServer; report: RecoveryReport; stateReport: StateRecoveryReport }> {
    const log = logger ?? pino({ name: 'wald' });
    // Chosen once, here: the log, its snapshots and compaction must all live on the same one.
    const storage = openStorage(walOptions.storage);
    const events = new ServerEvents(log, metricsOf(options.metricsListen ?? SERVER_DEFAULTS.metricsListen));
    const { wal, report } = await Wal.open({
      onWarning: (message, error) => log.warn({ err: error }, message),
      ...walOptions,
      storage,
      observer: events.walObserver(),
    });
    let state: StateKeeper | undefined;
    try {
      const opened = await StateKeeper.open({
        wal,
        storage,
        options: options.state,
        onFailure: (error) => log.error({ err: error }, 'the key-value view stopped following the log: Get, ListKeys and FlushAll fail until a restart'),
        onTxnTimeout: (aborted) => log.warn({ transaction: aborted }, 'transaction aborted: txn_timeout_ms passed since its PREPARE'),
        onSnapshotWritten: (created) => events.snapshotTaken({ id: created.id, walOffset: created.walOffset, durationMs: created.durationMs, bytes: created.sizeBytes }),
        // A follower's log takes its leader's frames only; the timer starts at promotion.
        startsTxnTimeout: replication === undefined || replication.role === 'leader',
      });
      state = opened.keeper;
      if (opened.report.inDoubtCount > 0) {
        log.warn({ inDoubtCount: opened.report.inDoubtCount, transactions: opened.report.inDoubtTransactions }, 'in-doubt transactions at recovery: prepared, neither committed nor aborted');
      }
      for (const skipped of opened.report.skippedSnapshots) {
        log.warn({ file: skipped.file, reason: skipped.reason }, 'snapshot not used: recovery fell back to an older one or the log');
      }
      const appendLimits = { ...wal.limits, ...options.appendLimits };
      const server = new WaldServer({ wal, state, options: { ...options, appendLimits }, logger: log, events, storage, clock: walOptions.clock, replication });
      events.recovered(report, opened.report);
      return { server, report, stateReport: opened.report };
    } catch (error) {
      await state?.close();
      await wal.close();
      throw error;
    }
  }

  /** @throws TypeError / RangeError naming the option for bad options (see `resolveServerOptions`). */
  constructor(init: WaldServerInit) {
    this.wal = init.wal;
    this.state = init.state;
    this.options = resolveServerOptions(init.options);
    this.logger = init.logger ?? pino({ name: 'wald' });
    this.events = init.events ?? new ServerEvents(this.logger, metricsOf(this.options.metricsListen));
    this.metrics = this.events.metrics;
    this.replication = init.replication ?? new ReplicationState();
    this.replication.on('promoted', this.onPromoted);
    this.tails = new StreamRegistry<TailStream>('TailWal', this.options.maxTailStreams, 'max_tail_streams');
    this.tailQueueBudget = new TailQueueBudget(this.options.maxTotalTailQueueBytes);
    this.appendStreams = new StreamRegistry<AppendStreamSession>('AppendStream', this.options.maxAppendStreams, 'max_append_streams');
    const stateOptions = resolveStateOptions(init.options?.state);
    const compaction = stateOptions.compaction;
    const { replication } = this.options;
    this.followers = new FollowerRegistry(this.wal, { maxFollowers: replication.maxFollowers, followerExpiryMs: replication.followerExpiryMs, clock: init.clock });
    this.followerReports = new StreamRegistry<ReportFollowerSession>('ReportFollower', replication.maxFollowers, 'replication.max_followers');
    // A frames tail naming a follower id is that follower connected (GetStats `connected`). Only
    // the tails the registry took are closed there: one it had no room for must not count down
    // the tails of a follower of the same id that it tracks.
    const trackedTails = new WeakSet<TailStream>();
    this.tails.on('open', (tail) => {
      if (tail instanceof FrameTailStream && tail.namesFollower && this.followers.tailOpened(tail.followerId, tail.peer, tail.fromOffset)) trackedTails.add(tail);
    });
    this.tails.on('close', (tail) => {
      if (tail instanceof FrameTailStream && trackedTails.delete(tail)) this.followers.tailClosed(tail.followerId, `tail ${tail.endReason ?? 'ended'}`);
    });
    this.followers.on('connected', (followerId, peer, fromOffset) => this.logger.info({ followerId, peer, fromOffset }, 'follower connected'));
    this.followers.on('disconnected', (followerId, why, connectedMs) => this.logger.info({ followerId, why, connectedMs }, 'follower disconnected'));
    this.compactor = new Compactor({
      wal: this.wal,
      state: this.state,
      storage: init.storage ?? init.wal.storage,
      options: compaction,
      clock: init.clock,
      leases: { current: () => this.followers.leases(), rules: replication },
    });
    this.pointInTime = new PointInTimeReplays({
      wal: this.wal,
      storage: this.state.storage,
      snapshotDir: this.state.snapshotDir,
      maxStateBytes: this.state.maxStateBytes,
      txnMaxEnded: stateOptions.txnMaxEnded,
      maxBuilds: stateOptions.maxPointInTimeBuilds,
      exclusive: (run) => this.compactor.exclusive(run),
      clock: init.clock,
    });
    this.compactionScheduler = new CompactionScheduler({ wal: this.wal, state: this.state, compactor: this.compactor, options: compaction, clock: init.clock });
    this.compactionScheduler.on('compacted', ({ trigger, recordsSinceSnapshot, logBytes, result }) => {
      this.logger.info({ trigger, recordsSinceSnapshot, logBytes, ...result }, 'automatic compaction');
      this.events.compactionRun(result);
    });
    this.compactionScheduler.on('failed', (error, trigger) => {
      this.logger.error({ err: error, trigger }, 'automatic compaction failed; the next check tries again');
    });
    this.snapshotStreams = new StreamRegistry<SnapshotSendStream>('GetSnapshot', this.options.maxSnapshotStreams, 'max_snapshot_streams');
    // The first interceptor gets grpc-js's innermost call: see grpcJsRefusalsInterceptor.
    this.grpcServer = new Server({ ...this.channelOptions(), interceptors: [grpcJsRefusalsInterceptor(this.options.maxReceiveMessageBytes)] });
    this.security = new ServerSecurity(this.options, this.logger, (reason) => this.metrics?.authenticationFailed(reason));
    const admission = new RpcAdmission(
      {
        wal: this.wal,
        state: this.state,
        compactor: this.compactor,
        pointInTime: this.pointInTime,
        options: this.options,
        logger: this.logger,
        tails: this.tails,
        tailQueueBudget: this.tailQueueBudget,
        appendStreams: this.appendStreams,
        snapshotStreams: this.snapshotStreams,
        metrics: this.metrics,
        events: this.events,
        followers: this.followers,
        replicaAcks: new ReplicaAcks(this.followers, this.options.maxMinReplicas, replication.minReplicasTimeoutMs),
        followerReports: this.followerReports,
        replication: this.replication,
      },
      { isStopping: () => this.statusValue === 'stopping' || this.statusValue === 'stopped', authenticator: this.security.authenticator },
    );
    this.metrics?.watch(this);
    this.grpcServer.addService(walServiceDefinition, createWalService(admission));
    // Health and reflection ask for no token: a load balancer probes health without one, and the
    // schema reflection serves is public (proto/); `reflection: false` turns reflection off.
    forgetUnwatchedServices(this.health);
    this.health.addToServer(this.grpcServer);
    if (this.options.reflection) {
      addReflection(this.grpcServer, {
        descriptors: new DescriptorIndex(loadDescriptorSet()),
        serviceNames: [WAL_SERVICE_NAME, HEALTH_SERVICE_NAME],
      });
    }
  }

  /**
   * Calls refused with `UNAUTHENTICATED` since the server was made (no token, or one of no entry of
   * the auth file); 0 without an auth file. A plain count, for metrics.
   */
  get authenticationFailures(): number {
    return this.security.authenticator?.authenticationFailures ?? 0;
  }

  /** Calls refused with `PERMISSION_DENIED` (a known token of too small a role) since the server was made; 0 without an auth file. */
  get permissionDenials(): number {
    return this.security.authenticator?.permissionDenials ?? 0;
  }

  /** Lifecycle state. */
  get status(): WaldServerStatus {
    return this.statusValue;
  }

  /** The port the server listens on, once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** The port of the metrics listener, once started with `metricsListen` on. */
  get metricsPort(): number | undefined {
    return this.boundMetricsPort;
  }

  /**
   * Why the server would not take an append now, or undefined when it would: what `/readyz`
   * answers (503 with the reason, else 200).
   */
  notReadyReason(): string | undefined {
    if (this.statusValue !== 'serving') return `the server is ${this.statusValue}`;
    if (this.wal.status !== 'open') return `the log is ${this.wal.status}`;
    const { writeState } = this.wal.stats();
    if (writeState === 'read-only') return 'the log is read-only after a failed write or fsync';
    if (writeState === 'disk-full') return 'the disk is full';
    return undefined;
  }

  /**
   * Whether the HTTP/2 receive window (`receiveWindowBytes`) is applied to new connections, and to
   * how many it was; undefined before `start()`.
   */
  get receiveWindow(): ReceiveWindowGrant | undefined {
    return this.receiveWindowGrant;
  }

  /**
   * The keepalive enforcement of the connections (`keepaliveMinPingIntervalMs`,
   * `keepalivePermitWithoutCalls`, `keepaliveMaxPingStrikes`): whether it watches them, and how many
   * it closed for too many PINGs; undefined before `start()`.
   */
  get keepaliveEnforcement(): KeepaliveEnforcement | undefined {
    return this.keepaliveEnforcementValue;
  }

  private channelOptions(): ChannelOptions {
    const o = this.options;
    return {
      'grpc.max_receive_message_length': o.maxReceiveMessageBytes,
      'grpc.max_send_message_length': o.maxSendMessageBytes,
      'grpc.keepalive_time_ms': o.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs,
      'grpc.max_concurrent_streams': o.maxConcurrentStreamsPerConnection,
      // grpc-js reads an absent key as "no limit"; 0 is ours for it.
      ...(o.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': o.maxConnectionAgeMs } : {}),
      ...(o.maxConnectionAgeGraceMs > 0 ? { 'grpc.max_connection_age_grace_ms': o.maxConnectionAgeGraceMs } : {}),
      ...(o.maxConnectionIdleMs > 0 ? { 'grpc.max_connection_idle_ms': o.maxConnectionIdleMs } : {}),
    };
  }

  /**
   * Reads the security files (`tlsCert`, `tlsKey`, `tlsClientCa`, `authFile`), binds
   * `options.listen` (and `options.metricsListen` unless it is `off`) and starts serving; resolves
   * with the bound gRPC port (useful with port 0; see {@link metricsPort} for the other).
   *
   * @throws Error when already started, or when an address cannot be bound; `TlsFilesError` /
   *   `AuthFileError` when a security file cannot be used.
   */
  async start(): Promise<number> {
    if (this.statusValue !== 'created') {
      throw new Error(`the server cannot start: it is ${this.statusValue}`);
    }
    this.statusValue = 'starting';
    try {
      const credentials = await this.security.load();
      await this.startMetrics();
      this.boundPort = await new Promise<number>((resolve, reject) => {
        this.grpcServer.bindAsync(this.options.listen, credentials, (error, port) => {
          if (error === null) {
            resolve(port);
          } else {
            reject(error);
          }
        });
      });
    } catch (error) {
      await this.metricsListener?.close();
      this.metricsListener = undefined;
      this.boundMetricsPort = undefined;
      this.statusValue = 'created';
      throw error;
    }
    this.receiveWindowGrant = grantReceiveWindow(this.grpcServer, this.options.receiveWindowBytes, this.logger);
    const o = this.options;
    this.keepaliveEnforcementValue = enforceKeepalive(
      this.grpcServer,
      { minPingIntervalMs: o.keepaliveMinPingIntervalMs, permitWithoutCalls: o.keepalivePermitWithoutCalls, maxPingStrikes: o.keepaliveMaxPingStrikes },
      this.logger,
      () => this.metrics?.tooManyPings(),
    );
    this.statusValue = 'serving';
    this.health.setStatus('', 'SERVING');
    this.health.setStatus(WAL_SERVICE_NAME, 'SERVING');
    this.health.setStatus(WAL_WRITE_HEALTH_NAME, this.replication.role === 'leader' ? 'SERVING' : 'NOT_SERVING');
    // On a follower they would append (ABORT, CHECKPOINT); they start at promotion (onPromoted).
    if (this.replication.role === 'leader') {
      this.state.startTxnTimeout();
      this.compactionScheduler.start();
    }
    const security = { tls: this.security.tlsMode, auth: this.security.authenticator !== undefined };
    const role = { role: this.replication.role, leader: this.replication.leaderAddress };
    this.logger.info({ address: withPort(this.options.listen, this.boundPort), dir: this.wal.dir, ...security, ...role, config: this.configSummary() }, 'wald listening');
    return this.boundPort;
  }

  /** Binds the metrics listener when `metricsListen` is on. */
  private async startMetrics(): Promise<void> {
    if (this.metrics === undefined) return;
    const listener = new MetricsListener(this.metrics, () => this.notReadyReason(), this.logger);
    this.boundMetricsPort = await listener.listen(this.options.metricsListen);
    this.metricsListener = listener;
    this.logger.info({ address: withPort(this.options.metricsListen, this.boundMetricsPort) }, 'metrics listening');
  }

  /** The options an operator checks first in the start line. */
  private configSummary(): object {
    const o = this.options;
    return {
      metricsListen: o.metricsListen,
      maxTailStreams: o.maxTailStreams,
      maxAppendStreams: o.maxAppendStreams,
      maxReceiveMessageBytes: o.maxReceiveMessageBytes,
      allowFlushAll: o.allowFlushAll,
      ...o.appendLimits,
    };
  }

  /**
   * Reads the TLS files and the auth file again (what `wald serve` does at SIGHUP): new
   * connections get the new certificate, open ones go on with theirs (tails are not interrupted);
   * calls from now on are checked against the new tokens. A part whose new files cannot be used
   * keeps what it had; the reason is logged and reported. See `ServerSecurity.reload`.
   */
  reloadSecurity(): Promise<SecurityReloadReport> {
    return this.security.reload();
  }

  /**
   * Stops gracefully: health turns NOT_SERVING, new calls are refused, tails end with
   * `UNAVAILABLE` (`WAL_SHUTTING_DOWN`), append streams answer what they read and end the same
   * way, in-flight calls finish (for up to `shutdownGraceMs`, then they are cancelled), the log is
   * synced and closed (the key-value view stops following it first). Idempotent: later calls
   * return the same promise.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    const wasServing = this.statusValue === 'serving';
    this.statusValue = 'stopping';
    // A follower's state outlives its servers (FollowerNode starts a new one after a truncation).
    this.replication.off('promoted', this.onPromoted);
    this.health.setStatus('', 'NOT_SERVING');
    this.health.setStatus(WAL_SERVICE_NAME, 'NOT_SERVING');
    this.health.setStatus(WAL_WRITE_HEALTH_NAME, 'NOT_SERVING');
    this.logger.info({ tails: this.tails.size, appendStreams: this.appendStreams.size }, 'wald stopping');
    if (wasServing) {
      const drained = new Promise<void>((resolve) => this.grpcServer.tryShutdown(() => resolve()));
      const streamsDone = Promise.all([
        this.tails.shutdownAll(),
        this.appendStreams.shutdownAll(),
        this.snapshotStreams.shutdownAll(),
        this.followerReports.shutdownAll(),
      ]);
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(resolve, this.options.shutdownGraceMs, 'timeout');
      });
      if ((await Promise.race([Promise.all([drained, streamsDone]), grace])) === 'timeout') {
        // A client that reads nothing keeps its stream, and the final status queued behind its
        // messages, open forever; cancelling the calls also wakes the streams waiting on it.
        this.logger.warn({ graceMs: this.options.shutdownGraceMs }, 'calls still open after the grace period: cancelling them');
        this.grpcServer.forceShutdown();
      }
      clearTimeout(timer);
      await streamsDone;
    } else {
      this.grpcServer.forceShutdown();
    }
    await this.compactionScheduler.stop();
    // A Compact or DeleteSegmentsBefore a client asked for may still run after its call ended.
    await this.compactor.idle();
    await this.state.close();
    try {
      await this.wal.sync();
    } catch (error) {
      this.logger.error({ err: error }, 'final sync failed');
    }
    await this.wal.close();
    // Last: probes see `/readyz` fail and scrapers get the final figures while the server stops.
    await this.metricsListener?.close();
    this.statusValue = 'stopped';
    this.logger.info('wald stopped');
  }
}

/** The metrics of a server whose `metricsListen` is `metricsListen`: undefined when it is off. */
function metricsOf(metricsListen: string): ServerMetrics | undefined {
  return metricsListen === METRICS_OFF ? undefined : new ServerMetrics();
}

/** `address` (`host:port`) with the port actually bound in place of its own (which may be 0). */
function withPort(address: string, port: number): string {
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}
