/**
 * The options of `WaldServer`, declared once: name, default, unit, documentation and check of
 * each, and the rules that relate the message size limits to the log's limits. `wald serve`
 * composes these declarations into its configuration (src/config/serve-config.ts), so each is
 * also a config key with the same name in snake_case.
 */
import type { AppendLimits } from '../engine/types.js';
import { WAL_OPTION_DECLARATIONS } from '../engine/wal-options.js';
import { booleanOption, integerOption, optionalTextOption, optionGroup, textOption, type OptionDeclarations } from '../options/option-spec.js';
import { OptionSet, type OptionInput, type OptionRule, type OptionValues } from '../options/option-set.js';
import type { StateOptions } from '../state/state-options.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Whether `value` is `host:port` (host a name, an IPv4 address or a bracketed IPv6 one) with a port up to 65535. */
function isListenAddress(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value);
  return match !== null && Number(match[2]) <= 65535;
}

/** The value of `metrics_listen` that turns the metrics listener off. */
export const METRICS_OFF = 'off';

/** Every option of the server, in the order of `--help` and docs/configuration.md. */
export const SERVER_OPTION_DECLARATIONS = {
  listen: textOption(
    {
      default: '127.0.0.1:7070',
      unit: 'host:port',
      doc: 'address the gRPC server listens on; port 0 picks a free port',
      why:
        'Loopback only: exposing the log to the network is an explicit choice. With port 0, the log line ' +
        '`wald listening` shows the port taken. IPv6 as `[::1]:7070`.',
    },
    { expected: 'host:port with a port from 0 to 65535', matches: isListenAddress },
  ),
  metricsListen: textOption(
    {
      default: METRICS_OFF,
      unit: 'host:port',
      doc: 'address of the HTTP listener of /metrics, /healthz and /readyz; off: none',
      why:
        'Off by default: no port is opened unless asked for. When on, Prometheus metrics (docs/server.md lists them) ' +
        'and the liveness and readiness probes are served over plain HTTP on their own port, never on the gRPC one; ' +
        'port 0 picks a free port (the log line `metrics listening` shows it). Bind it to an address only the ' +
        'monitoring can reach.',
    },
    { expected: `host:port with a port from 0 to 65535, or ${METRICS_OFF}`, matches: (value) => value === METRICS_OFF || isListenAddress(value) },
  ),
  maxReceiveMessageBytes: integerOption({
    default: 5 * MiB,
    unit: 'bytes',
    doc: 'largest gRPC request message (grpc.max_receive_message_length)',
    why: 'A full batch plus its protobuf framing (a few bytes per record and header).',
  }),
  maxSendMessageBytes: integerOption({
    default: 8 * MiB,
    unit: 'bytes',
    doc: 'largest gRPC response message (grpc.max_send_message_length)',
    why: 'A full response or one maximal record, with room to spare.',
  }),
  maxResponseBytes: integerOption({
    default: 3 * MiB,
    unit: 'bytes',
    doc: 'most record bytes in one Read response or TailWal message (the cap of max_bytes)',
    why: 'Keeps a response under the 4 MiB that gRPC clients accept by default.',
  }),
  maxTailBatchRecords: integerOption({
    default: 1000,
    unit: 'records',
    doc: 'most records in one TailWal message (the cap of max_records)',
    why: "Batching amortises grpc-js's per-message cost (about 15 us).",
  }),
  tailHeartbeatIntervalMs: integerOption({
    default: 5000,
    unit: 'ms',
    doc: 'period of TailWal heartbeats while no record arrives',
    why: 'A follower notices a dead stream within seconds.',
  }),
  maxTailStreams: integerOption({
    default: 1024,
    unit: 'streams',
    doc: 'most TailWal streams open at once',
    why: 'More get `RESOURCE_EXHAUSTED` (`WAL_TOO_MANY_STREAMS`); each holds at most `max_tail_queue_bytes` plus one message.',
  }),
  maxTailQueueBytes: integerOption({
    default: 8 * MiB,
    unit: 'bytes',
    doc: 'most message bytes queued on one TailWal stream, waiting for the transport',
    why: 'Bounds what a stuck consumer can pin.',
  }),
  maxTotalTailQueueBytes: integerOption({
    default: 256 * MiB,
    unit: 'bytes',
    doc: 'most message bytes queued on all TailWal streams together (plus reads in progress)',
    why:
      'Without it, `max_tail_streams` stuck consumers could pin `max_tail_streams` x `max_tail_queue_bytes` (8 GiB by ' +
      'default). A tail that would go over stops reading the log and waits, first come first served, until any ' +
      "tail's transport takes a message or a tail ends; it never fails for it. 32 tails stuck at their own cap spend " +
      'the default, and then healthy tails wait too, until those are read or cancelled (keepalive drops dead ones). ' +
      'One message larger than the cap still goes out, alone. `GetStats` `tail_queue_bytes` shows the bytes held.',
  }),
  maxAppendStreams: integerOption({
    default: 1024,
    unit: 'streams',
    doc: 'most AppendStream streams open at once',
    why: 'As tails; more get `RESOURCE_EXHAUSTED`.',
  }),
  maxSnapshotStreams: integerOption({
    default: 8,
    unit: 'streams',
    doc: 'most GetSnapshot streams open at once',
    why: 'Each holds a snapshot file open and about two 256 KiB chunks; snapshots are fetched a few at a time (backups, installs). More get `RESOURCE_EXHAUSTED`.',
  }),
  maxInFlightAppends: integerOption({
    default: 1024,
    unit: 'appends',
    doc: 'most unanswered appends read ahead on one AppendStream',
    why: 'Enough to fill a group commit, bounded in memory; the server stops reading the stream beyond it.',
  }),
  maxAppendsPerMessage: integerOption({
    default: 1024,
    unit: 'appends',
    doc: 'most appends one AppendStream message may carry (`AppendStreamRequest.appends`)',
    why:
      'Bounds the results one message makes the server hold and answer at once; a message with more is refused whole ' +
      '(`INVALID_ARGUMENT`, field `appends`). The message bytes are bounded by `max_receive_message_bytes` anyway.',
  }),
  allowFlushAll: booleanOption({
    default: false,
    doc: 'accept FlushAll, which removes every key of the key-value view',
    why:
      'Off, FlushAll is refused (`FAILED_PRECONDITION`, reason `WAL_FLUSH_ALL_DISABLED`): one call empties the view for every ' +
      'client, so a server has to be started with it on purpose. The log keeps every record either way (the flush is a record too).',
  }),
  maxMinReplicas: integerOption(
    {
      default: 8,
      unit: 'followers',
      doc: 'largest min_replicas an append may ask for',
      why:
        'An append with more is refused before anything is written (`INVALID_ARGUMENT`, field `min_replicas`), so that a ' +
        'typo (1000 for 1) fails at once instead of waiting out its deadline. 0 refuses synchronous replication altogether.',
    },
    { min: 0 },
  ),
  replication: optionGroup({
    minReplicasTimeoutMs: integerOption({
      default: 10_000,
      unit: 'ms',
      doc: 'how long an append with min_replicas but no deadline waits for its followers',
      why:
        'A call with a deadline waits until shortly before it; one without would otherwise wait for good when no ' +
        'follower is there. Past it: `DEADLINE_EXCEEDED`, reason `WAL_REPLICAS_TIMEOUT`; the records stay in the log.',
    }),
    maxFollowers: integerOption({
      default: 64,
      unit: 'followers',
      doc: 'most followers the leader tracks (GetStats, min_replicas, retention leases), and ReportFollower streams open at once',
      why:
        'Bounds the follower registry. A new follower beyond it takes the place of the one disconnected longest; when ' +
        'all are connected it is refused (`RESOURCE_EXHAUSTED`, `WAL_TOO_MANY_STREAMS`).',
    }),
    followerExpiryMs: integerOption({
      default: 60 * 60 * 1000,
      unit: 'ms',
      doc: 'how long the leader remembers a follower that has neither a ReportFollower stream nor a frames tail open',
      why:
        'A follower restarting or briefly away keeps its place in GetStats and `wald followers` (its retention lease ' +
        'lasts only while it is connected); one gone longer is forgotten.',
    }),
    leaseMaxBytes: integerOption(
      {
        default: 1024 * 1024 * 1024,
        unit: 'bytes',
        doc: 'most bytes of sealed segments a follower\'s retention lease keeps from compaction; 0: no leases',
        why:
          'Compaction keeps the segments a connected follower still needs (from its durable next offset on), so that it ' +
          'catches up from the log instead of installing a snapshot; a follower that needs more than this has its lease ' +
          'lapse (`wald followers` shows it) and falls back to a snapshot install. compaction.max_log_bytes wins over leases.',
      },
      { min: 0 },
    ),
    leaseMaxAgeMs: integerOption(
      {
        default: 24 * 60 * 60 * 1000,
        unit: 'ms',
        doc: 'a follower\'s lease lapses when the oldest segment it needs has no record younger than this; 0: no leases',
        why:
          'Age as retention_ms counts it (a segment\'s newest record): with the byte cap, it bounds how far behind a ' +
          'follower may fall and still catch up from the log.',
      },
      { min: 0 },
    ),
  }),
  receiveWindowBytes: integerOption(
    {
      default: 1 * MiB,
      unit: 'bytes',
      doc: 'HTTP/2 receive window granted to each connection and stream',
      why:
        "How much a client may send before the server reads it; the bounds are HTTP/2's. grpc-js keeps " +
        '64 KiB, which stalls a pipelining client while the server syncs; 1 MiB gave AppendStream ~30% more here ' +
        '(docs/benchmarks.md). grpc-js has no server option for it, so it is applied through grpc-js internals: if a ' +
        'grpc-js version hides them, the server logs an error and keeps 64 KiB (`WaldServer.receiveWindow.isHooked` ' +
        'is then false), and the unit test `test/unit/server/receive-window.test.ts` pins those internals for the ' +
        'grpc-js version in package.json, so an upgrade that moves them fails the tests.',
    },
    { min: 65_535, max: 2 ** 31 - 1 },
  ),
  keepaliveTimeMs: integerOption({
    default: 30_000,
    unit: 'ms',
    doc: 'period of server HTTP/2 keepalive PINGs (grpc.keepalive_time_ms)',
    why: 'Detects dead followers on idle tails without flooding links.',
  }),
  keepaliveTimeoutMs: integerOption({
    default: 10_000,
    unit: 'ms',
    doc: 'how long a PING may go unanswered before the connection is dropped',
    why: 'Ten seconds to answer, on a slow link too.',
  }),
  keepaliveMinPingIntervalMs: integerOption(
    {
      default: 250,
      unit: 'ms',
      doc: 'least time between two client PINGs with nothing sent by the server between them; 0: no limit (grpc.http2.min_ping_interval_without_data_ms)',
      why:
        'Keepalive enforcement as gRPC core and grpc-go do it: a PING sooner than this after the previous one, with no ' +
        'response, message, heartbeat or trailers written to the connection since, is a strike; past ' +
        '`keepalive_max_ping_strikes` the client gets GOAWAY `ENHANCE_YOUR_CALM` `too_many_pings` and the connection is ' +
        'closed, with its calls (grpc-js and gRPC core clients then double their keepalive time). A PING after anything ' +
        'the server wrote clears the strikes, so clients that ping back at what they receive are never punished. gRPC ' +
        "core's default is 5 minutes; wald's own follower pings every second with or without a call open " +
        '(`replication.keepalive_time_ms`, 1000), so the default is a quarter of that: a ping flood is stopped after ' +
        'three PINGs, and a follower pinging every 500 ms keeps a margin of two. Keep clients\' keepalive time above it.',
    },
    { min: 0 },
  ),
  keepalivePermitWithoutCalls: booleanOption({
    default: true,
    doc: 'allow client PINGs every keepalive_min_ping_interval_ms on a connection with no call open too (grpc.keepalive_permit_without_calls)',
    why:
      "On by default: wald's follower keeps pinging its leader between two tails, to notice a dead leader at once. " +
      "Off, as in gRPC core and grpc-go, a PING on a connection with no call open is a strike unless two hours " +
      'passed since the previous one (or the server wrote since).',
  }),
  keepaliveMaxPingStrikes: integerOption(
    {
      default: 2,
      unit: 'pings',
      doc: 'too-soon client PINGs tolerated before the connection is closed (grpc.http2.max_ping_strikes)',
      why:
        "gRPC core's and grpc-go's 2: the third too-soon PING in a row (nothing written by the server between them) " +
        'closes the connection. 0 closes it at the first; unlike gRPC core, 0 does not turn enforcement off: ' +
        '`keepalive_min_ping_interval_ms` 0 does.',
    },
    { min: 0 },
  ),
  maxConcurrentStreamsPerConnection: integerOption({
    default: 2048,
    unit: 'streams',
    doc: 'most calls open at once on one HTTP/2 connection (grpc.max_concurrent_streams)',
    why:
      'Sent to each client in the HTTP/2 SETTINGS; a client that opens more has them wait in its own queue until a ' +
      'call ends (grpc-js and other conforming clients), and a stream opened over it anyway is refused by HTTP/2 ' +
      '(`REFUSED_STREAM`, which grpc-js reports as `UNAVAILABLE`). Without it Node allows about 4 billion. The default ' +
      'is `max_tail_streams` + `max_append_streams`: the grpc-js clients of one process share one connection per ' +
      'server, and a tail held up in the client queue would wait for good, so one process may hold every stream the ' +
      'server admits.',
  }),
  maxConnectionAgeMs: integerOption(
    {
      default: 0,
      unit: 'ms',
      doc: 'age after which a connection is told to go away (GOAWAY); 0: never (grpc.max_connection_age_ms)',
      why:
        'Off by default: TailWal streams live as long as their follower, and a connection cut under them would end ' +
        'them. Set it behind a layer-4 load balancer to spread reconnecting clients: new calls go to a new connection, ' +
        'open ones go on for `max_connection_age_grace_ms`.',
    },
    { min: 0 },
  ),
  maxConnectionAgeGraceMs: integerOption(
    {
      default: 0,
      unit: 'ms',
      doc: 'how long calls open at max_connection_age_ms may go on before the connection is closed; 0: until they end',
      why:
        'Unlimited by default, so that an aged connection never cuts a tail; set, the calls still open after it are ' +
        'cancelled with the connection (a `WalClient` tail resumes from its next offset).',
    },
    { min: 0 },
  ),
  maxConnectionIdleMs: integerOption(
    {
      default: 300_000,
      unit: 'ms',
      doc: 'how long a connection with no call open is kept; 0: for good (grpc.max_connection_idle_ms)',
      why:
        'Frees the socket of a client that went quiet, or never sent a request (a half-open HTTP/2 preface): after it ' +
        'the server sends GOAWAY and closes the connection. A connection with a call open (a tail) is never idle; a ' +
        'grpc-js client reconnects at its next call. Five minutes: well above any pause between calls of a live client.',
    },
    { min: 0 },
  ),
  shutdownGraceMs: integerOption({
    default: 5000,
    unit: 'ms',
    doc: 'how long shutdown waits for calls to finish before cancelling them',
    why: 'At SIGINT/SIGTERM (or `stop()`), in-flight calls get this long to finish.',
  }),
  tlsCert: optionalTextOption({
    unit: 'path',
    doc: 'PEM certificate chain of the server; with tls_key, the server speaks TLS only',
    why:
      'Unset, the server speaks plaintext HTTP/2 (fine on loopback, not across a network). Re-read at SIGHUP ' +
      '(`WaldServer.reloadSecurity()`): new connections get the new certificate, open ones (and their tails) go on. ' +
      'A pair that cannot be read, or whose key does not match, is logged and the old one kept.',
  }),
  tlsKey: optionalTextOption({
    unit: 'path',
    doc: 'PEM private key of tls_cert',
    why: 'Readable by the server only (mode 0600). Re-read with the certificate at SIGHUP.',
  }),
  tlsClientCa: optionalTextOption({
    unit: 'path',
    doc: 'PEM CA certificates that sign client certificates; set, clients must present one (mutual TLS)',
    why:
      'A client without a certificate signed by one of them fails the TLS handshake. Needs tls_cert. Re-read at ' +
      'SIGHUP. Mutual TLS says who may connect; bearer tokens (auth_file) say what each caller may do.',
  }),
  authFile: optionalTextOption({
    unit: 'path',
    doc: 'YAML file of accepted bearer tokens (their SHA-256) and roles; set, every WalService call needs a token',
    why:
      'Unset, no token is asked for. Entries `{ token_sha256, role, name? }` under `tokens:` (docs/server.md, ' +
      '"Security"); `wald auth hash-token` prints the hash of a token. Missing or unknown token: `UNAUTHENTICATED`; ' +
      'a role below the RPC\'s: `PERMISSION_DENIED`. Health and reflection stay open. Re-read at SIGHUP; a file ' +
      'that does not load is logged and the tokens before it kept.',
  }),
  maxAuthFileBytes: integerOption({
    default: 1 * MiB,
    unit: 'bytes',
    doc: 'largest auth file the server reads',
    why: 'Some ten thousand tokens; a path given by mistake (a log, a device) fails instead of filling memory.',
  }),
  authRefusalLogPerSecond: integerOption(
    {
      default: 10,
      unit: 'lines',
      doc: 'most log lines a second about refused calls (UNAUTHENTICATED, PERMISSION_DENIED); 0 logs none',
      why:
        'A client retrying with a bad token, or a scan, would otherwise write a line per call. Lines past the budget ' +
        'are counted and the next line written says how many were left out (`suppressed`); the metrics count every refusal.',
    },
    { min: 0 },
  ),
  reflection: booleanOption({
    default: true,
    doc: 'serve gRPC server reflection (v1 and v1alpha), which lists the services and their messages',
    why:
      'On, `grpcurl` and `buf curl` work with no proto files; reflection asks for no token, as the schema is public ' +
      '(proto/). Off (`--no-reflection`, `--reflection=false`), it answers `UNIMPLEMENTED`.',
  }),
} satisfies OptionDeclarations;

/** The server's declared options, every one present. */
export type ServerOptionValues = OptionValues<typeof SERVER_OPTION_DECLARATIONS>;

const APPEND_LIMIT_DECLARATIONS = {
  maxRecordBytes: WAL_OPTION_DECLARATIONS.maxRecordBytes,
  maxBatchBytes: WAL_OPTION_DECLARATIONS.maxBatchBytes,
  maxBatchRecords: WAL_OPTION_DECLARATIONS.maxBatchRecords,
} satisfies OptionDeclarations;

/** The log's limits as the server checks them: the engine's own declarations. */
const APPEND_LIMITS = new OptionSet(APPEND_LIMIT_DECLARATIONS);

/** {@link ServerOptions} with every default filled in. */
export type ResolvedServerOptions = ServerOptionValues & { readonly appendLimits: AppendLimits };

/** Protobuf framing allowed per message on top of its record bytes. */
const FRAMING_BYTES = 256 * KiB;

/** The rules that relate the server's message sizes to the log's limits, and the TLS files to each other. */
const SERVER_RULES: readonly OptionRule<ResolvedServerOptions>[] = [
  {
    key: 'tlsKey',
    describe: (name) => `given when and only when ${name('tlsCert')} is`,
    check: (options) => ((options.tlsCert === undefined) === (options.tlsKey === undefined) ? undefined : `tls_cert ${options.tlsCert === undefined ? 'unset' : 'set'}`),
  },
  {
    key: 'tlsClientCa',
    describe: (name) => `given only with ${name('tlsCert')}`,
    check: (options) => (options.tlsClientCa !== undefined && options.tlsCert === undefined ? 'tls_cert unset' : undefined),
  },
  {
    key: 'maxSendMessageBytes',
    describe: (name) => `at least max(${name('maxResponseBytes')}, ${name('maxRecordBytes')}) + 256 KiB of framing`,
    check: (options) => {
      const least = Math.max(options.maxResponseBytes, options.appendLimits.maxRecordBytes) + FRAMING_BYTES;
      return options.maxSendMessageBytes >= least ? undefined : String(least);
    },
  },
  {
    key: 'maxReceiveMessageBytes',
    describe: (name) => `at least ${name('maxBatchBytes')} + 256 KiB of framing`,
    check: (options) => {
      const least = options.appendLimits.maxBatchBytes + FRAMING_BYTES;
      return options.maxReceiveMessageBytes >= least ? undefined : String(least);
    },
  },
];

/** The server's options and their checks. */
export const SERVER_OPTIONS = new OptionSet<typeof SERVER_OPTION_DECLARATIONS, { readonly appendLimits: AppendLimits }>(
  SERVER_OPTION_DECLARATIONS,
  SERVER_RULES,
);

/** Defaults of the server; each is a named limit with its unit in the key. */
export const SERVER_DEFAULTS: ServerOptionValues = SERVER_OPTIONS.defaults;

/**
 * Options of {@link WaldServer}: the declared options (see {@link SERVER_OPTION_DECLARATIONS};
 * each optional) and the log's limits.
 */
export interface ServerOptions extends OptionInput<typeof SERVER_OPTION_DECLARATIONS> {
  /** Limits of the log; default: the engine's defaults. */
  readonly appendLimits?: Partial<AppendLimits> | undefined;
  /** Options of the key-value view that `WaldServer.open` opens over the log (its cap, its snapshot directory). */
  readonly state?: StateOptions | undefined;
}

const describeOption = (key: string): string => `server option ${key}`;

/**
 * Fills in the defaults of `options` and checks them.
 *
 * @throws TypeError naming the option for a value of the wrong type; RangeError naming it for a
 *   value out of range, or when `maxSendMessageBytes` cannot carry a full response or a maximal
 *   record, or `maxReceiveMessageBytes` a full batch.
 */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  const appendLimits = APPEND_LIMITS.resolve(options.appendLimits ?? {}, {}, (key) => describeOption(`appendLimits.${key}`));
  return { ...SERVER_OPTIONS.resolve(options, { appendLimits }, describeOption), appendLimits };
}
