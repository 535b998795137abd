/**
 * The configuration of `wald serve`: every key, its default, and one resolver.
 *
 * Each key has exactly one name per source, derived from the key itself:
 *
 * | source      | form                      | example                          |
 * | ----------- | ------------------------- | -------------------------------- |
 * | YAML file   | the key, camelCase        | `dataDir: /var/lib/wald`         |
 * | environment | `WALD_` + SCREAMING_SNAKE | `WALD_DATA_DIR=/var/lib/wald`    |
 * | flag        | `--` + kebab-case         | `--data-dir /var/lib/wald`       |
 *
 * Precedence: flags > environment > file > defaults. The file is named by `--config` or
 * `WALD_CONFIG`; without one, no file is read.
 */
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { SyncPolicy } from './engine/types.js';
import { resolveWalOptions, WAL_DEFAULTS, type WalOptions } from './engine/wal-options.js';
import { resolveServerOptions, SERVER_DEFAULTS, type ServerOptions } from './server/server-options.js';
import { NodeStorage } from './storage/node-storage.js';

/** Levels of the JSON log, least to most verbose; `silent` logs nothing. */
export const LOG_LEVELS = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** A level of the JSON log; see {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The sync policies of the log. */
export const SYNC_POLICIES: readonly SyncPolicy[] = ['always', 'interval', 'none'];

/** The resolved configuration of `wald serve`. Every key is documented in `docs/configuration.md`. */
export interface ServeConfig {
  /** `host:port` the gRPC server listens on; port 0 picks a free port. */
  readonly listen: string;
  /** Directory of the log's segment files; created if missing. */
  readonly dataDir: string;
  /** When the log calls `fdatasync`: `always`, `interval` or `none`. */
  readonly sync: SyncPolicy;
  /** Period of the background sync under `sync: interval`, ms. */
  readonly syncIntervalMs: number;
  /** Size at which a segment is sealed and the next one started, bytes. */
  readonly segmentSizeBytes: number;
  /** Whether new segments are filled with zeros up front. */
  readonly preallocate: boolean;
  /** Largest record (key + value + headers), bytes. */
  readonly maxRecordBytes: number;
  /** Largest batch (one append), bytes. */
  readonly maxBatchBytes: number;
  /** Most records in one append. */
  readonly maxBatchRecords: number;
  /** Bytes of log between two sparse index entries. */
  readonly indexIntervalBytes: number;
  /** How often a full disk is checked for free space again, ms. */
  readonly diskFullProbeIntervalMs: number;
  /** Least time between two writes of the recovery point, ms. */
  readonly recoveryPointIntervalMs: number;
  /** Most producer ids remembered for idempotent appends. */
  readonly maxProducers: number;
  /** Most sealed segments whose files stay open for reads. */
  readonly maxOpenSegmentFiles: number;
  /** Largest gRPC request message accepted, bytes. */
  readonly maxReceiveMessageBytes: number;
  /** Largest gRPC response message sent, bytes. */
  readonly maxSendMessageBytes: number;
  /** Most record bytes in one Read response or TailWal message. */
  readonly maxResponseBytes: number;
  /** Most records in one TailWal message. */
  readonly maxTailBatchRecords: number;
  /** Period of TailWal heartbeats while no record arrives, ms. */
  readonly tailHeartbeatIntervalMs: number;
  /** Most TailWal streams open at once. */
  readonly maxTailStreams: number;
  /** Most message bytes queued on one TailWal stream. */
  readonly maxTailQueueBytes: number;
  /** Most message bytes queued on all TailWal streams together. */
  readonly maxTotalTailQueueBytes: number;
  /** Most AppendStream streams open at once. */
  readonly maxAppendStreams: number;
  /** Most unanswered appends read ahead on one AppendStream. */
  readonly maxInFlightAppends: number;
  /** HTTP/2 receive window granted to each connection and stream, bytes. */
  readonly receiveWindowBytes: number;
  /** Period of server HTTP/2 keepalive PINGs, ms. */
  readonly keepaliveTimeMs: number;
  /** How long a PING may go unanswered before the connection is dropped, ms. */
  readonly keepaliveTimeoutMs: number;
  /** How long shutdown waits for calls to finish before cancelling them, ms. */
  readonly shutdownGraceMs: number;
  /** Level of the JSON log written to stdout. */
  readonly logLevel: LogLevel;
}

/** A key of {@link ServeConfig}. */
export type ConfigKey = keyof ServeConfig;

/** Defaults of `wald serve`. Engine and server limits are the engine's and server's own defaults. */
export const CONFIG_DEFAULTS: Readonly<ServeConfig> = Object.freeze({
  /** Loopback only: exposing the log to the network is an explicit choice. */
  listen: SERVER_DEFAULTS.listen,
  /** `./data`, relative to the working directory: predictable for `npm start`. */
  dataDir: './data',
  /** `always`: an acknowledged append survives a crash. */
  sync: WAL_DEFAULTS.syncPolicy,
  /** 100 ms: the loss window of `sync: interval`. */
  syncIntervalMs: WAL_DEFAULTS.syncIntervalMs,
  /** 64 MiB: amortises rotation, small enough to compact in steps. */
  segmentSizeBytes: WAL_DEFAULTS.segmentSizeBytes,
  /** true: overwriting blocks syncs faster than growing a file. */
  preallocate: WAL_DEFAULTS.preallocate,
  /** 1 MiB per record, bytes. */
  maxRecordBytes: WAL_DEFAULTS.maxRecordBytes,
  /** 4 MiB per append, bytes: the default gRPC message size. */
  maxBatchBytes: WAL_DEFAULTS.maxBatchBytes,
  /** 10,000 records per append. */
  maxBatchRecords: WAL_DEFAULTS.maxBatchRecords,
  /** 4 KiB of log per index entry, bytes, as Kafka's `index.interval.bytes`. */
  indexIntervalBytes: WAL_DEFAULTS.indexIntervalBytes,
  /** 1000 ms between free-space checks while the disk is full. */
  diskFullProbeIntervalMs: WAL_DEFAULTS.diskFullProbeIntervalMs,
  /** 1000 ms: at most one small write and sync a second records how far the log is durable. */
  recoveryPointIntervalMs: WAL_DEFAULTS.recoveryPointIntervalMs,
  /** 10,000 producers remembered for idempotent retries. */
  maxProducers: WAL_DEFAULTS.maxProducers,
  /** 256 files: 16 GiB of 64 MiB segments readable without reopening, well below 1024 fds. */
  maxOpenSegmentFiles: WAL_DEFAULTS.maxOpenSegmentFiles,
  /** 5 MiB, bytes: a full batch plus its protobuf framing. */
  maxReceiveMessageBytes: SERVER_DEFAULTS.maxReceiveMessageBytes,
  /** 8 MiB, bytes: a full response or a maximal record, with room to spare. */
  maxSendMessageBytes: SERVER_DEFAULTS.maxSendMessageBytes,
  /** 3 MiB, bytes: keeps a response under the 4 MiB gRPC clients accept by default. */
  maxResponseBytes: SERVER_DEFAULTS.maxResponseBytes,
  /** 1000 records per tail message: amortises the per-message cost of grpc-js. */
  maxTailBatchRecords: SERVER_DEFAULTS.maxTailBatchRecords,
  /** 5000 ms: a follower notices a dead stream within seconds. */
  tailHeartbeatIntervalMs: SERVER_DEFAULTS.tailHeartbeatIntervalMs,
  /** 1024 tails, each with bounded memory. */
  maxTailStreams: SERVER_DEFAULTS.maxTailStreams,
  /** 8 MiB per tail, bytes: bounds what a stuck consumer can pin. */
  maxTailQueueBytes: SERVER_DEFAULTS.maxTailQueueBytes,
  /** 256 MiB for all tails, bytes: bounds what many stuck consumers can pin together. */
  maxTotalTailQueueBytes: SERVER_DEFAULTS.maxTotalTailQueueBytes,
  /** 1024 append streams. */
  maxAppendStreams: SERVER_DEFAULTS.maxAppendStreams,
  /** 1024 pipelined appends per stream: fills a group commit, bounded in memory. */
  maxInFlightAppends: SERVER_DEFAULTS.maxInFlightAppends,
  /** 1 MiB: a pipelining client keeps sending while the server syncs. */
  receiveWindowBytes: SERVER_DEFAULTS.receiveWindowBytes,
  /** 30,000 ms: detects dead followers on idle tails without flooding links. */
  keepaliveTimeMs: SERVER_DEFAULTS.keepaliveTimeMs,
  /** 10,000 ms to answer a PING. */
  keepaliveTimeoutMs: SERVER_DEFAULTS.keepaliveTimeoutMs,
  /** 5000 ms for calls to finish at shutdown. */
  shutdownGraceMs: SERVER_DEFAULTS.shutdownGraceMs,
  /** `info`: startup, recovery, shutdown and warnings. */
  logLevel: 'info',
} satisfies ServeConfig);

/** How a key's value is written and checked. */
export type ConfigKind = 'string' | 'integer' | 'boolean' | 'listen' | 'sync' | 'logLevel';

/** What the resolver and `--help` know about one key. */
export interface ConfigKeySpec {
  readonly kind: ConfigKind;
  /** One line for `--help` and the docs. */
  readonly description: string;
  /** Name of the flag's value in `--help` (`<ms>`, `<bytes>`...). */
  readonly valueName: string;
}

const integer = (description: string, valueName: string): ConfigKeySpec => ({ kind: 'integer', description, valueName });

/** Every key of {@link ServeConfig}, in the order of `--help` and `--print-config`. */
export const CONFIG_KEYS: Readonly<Record<ConfigKey, ConfigKeySpec>> = Object.freeze({
  listen: { kind: 'listen', description: 'host:port to listen on (port 0: any free port)', valueName: 'host:port' },
  dataDir: { kind: 'string', description: 'directory of the log files (created if missing)', valueName: 'dir' },
  sync: { kind: 'sync', description: 'when to fdatasync: always | interval | none', valueName: 'policy' },
  syncIntervalMs: integer('period of the background sync under --sync interval', 'ms'),
  segmentSizeBytes: integer('segment size at which a new segment starts', 'bytes'),
  preallocate: { kind: 'boolean', description: 'fill new segments with zeros up front (--no-preallocate to turn off)', valueName: 'bool' },
  maxRecordBytes: integer('largest record (key + value + headers)', 'bytes'),
  maxBatchBytes: integer('largest batch (one append)', 'bytes'),
  maxBatchRecords: integer('most records in one append', 'count'),
  indexIntervalBytes: integer('bytes of log between sparse index entries', 'bytes'),
  diskFullProbeIntervalMs: integer('free-space check period while the disk is full', 'ms'),
  recoveryPointIntervalMs: integer('least time between two writes of the recovery point', 'ms'),
  maxProducers: integer('producer ids remembered for idempotent appends', 'count'),
  maxOpenSegmentFiles: integer('sealed segments whose files stay open for reads', 'count'),
  maxReceiveMessageBytes: integer('largest gRPC request message', 'bytes'),
  maxSendMessageBytes: integer('largest gRPC response message', 'bytes'),
  maxResponseBytes: integer('most record bytes per Read response or TailWal message', 'bytes'),
  maxTailBatchRecords: integer('most records per TailWal message', 'count'),
  tailHeartbeatIntervalMs: integer('TailWal heartbeat period while idle', 'ms'),
  maxTailStreams: integer('most TailWal streams open at once', 'count'),
  maxTailQueueBytes: integer('most message bytes queued per TailWal stream', 'bytes'),
  maxTotalTailQueueBytes: integer('most message bytes queued on all TailWal streams together', 'bytes'),
  maxAppendStreams: integer('most AppendStream streams open at once', 'count'),
  maxInFlightAppends: integer('most unanswered appends read ahead per AppendStream', 'count'),
  receiveWindowBytes: integer('HTTP/2 receive window per connection and stream', 'bytes'),
  keepaliveTimeMs: integer('server keepalive PING period', 'ms'),
  keepaliveTimeoutMs: integer('time to answer a keepalive PING', 'ms'),
  shutdownGraceMs: integer('time for calls to finish at shutdown', 'ms'),
  logLevel: { kind: 'logLevel', description: `log level: ${LOG_LEVELS.join(' | ')}`, valueName: 'level' },
} satisfies Record<ConfigKey, ConfigKeySpec>);

/** The keys of {@link ServeConfig} in declaration order. */
export const CONFIG_KEY_NAMES = Object.keys(CONFIG_KEYS) as ConfigKey[];

/** Environment variable naming the config file when `--config` is not given. */
export const CONFIG_FILE_ENV = 'WALD_CONFIG';

/** The flag of a key: `dataDir` -> `--data-dir`. */
export function flagName(key: ConfigKey): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The environment variable of a key: `dataDir` -> `WALD_DATA_DIR`. */
export function envName(key: ConfigKey): string {
  return `WALD_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** A configuration value that cannot be used; `key` names the key, `source` where it came from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly key: string | undefined,
    readonly source: string,
    message: string,
  ) {
    super(message);
  }
}

/** The parsed contents of a config file, and its path (for messages). */
export interface ConfigFile {
  readonly path: string;
  readonly values: Readonly<Record<string, unknown>>;
}

/** Where {@link resolveConfig} takes values from. Each is optional. */
export interface ConfigSources {
  /** Values given as flags (strings, or booleans for `preallocate`); undefined = not given. */
  readonly flags?: Readonly<Partial<Record<ConfigKey, unknown>>> | undefined;
  /** The process environment; only `WALD_*` variables of known keys are read. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The config file, parsed by {@link parseConfigFile}. */
  readonly file?: ConfigFile | undefined;
}

/**
 * Parses the YAML text of a config file: a mapping of camelCase keys to values.
 *
 * @throws ConfigError when the text is not YAML, not a mapping, or names an unknown key (with
 *   the camelCase spelling when a snake_case or kebab-case one was used).
 */
export function parseConfigFile(text: string, path: string): ConfigFile {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(undefined, path, `config file ${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return { path, values: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(undefined, path, `config file ${path} must be a mapping of keys to values`);
  }
  const values = parsed as Record<string, unknown>;
  for (const key of Object.keys(values)) {
    if (!(key in CONFIG_KEYS)) {
      const camel = key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
      const hint = camel in CONFIG_KEYS ? ` (keys are camelCase: did you mean ${camel}?)` : '';
      throw new ConfigError(key, path, `config file ${path}: unknown key ${key}${hint}`);
    }
  }
  return { path, values };
}

function parseValue(key: ConfigKey, raw: unknown, source: string): unknown {
  const spec = CONFIG_KEYS[key];
  const fail = (expected: string): never => {
    throw new ConfigError(key, source, `invalid ${key} (from ${source}): ${JSON.stringify(raw)} is not ${expected}`);
  };
  switch (spec.kind) {
    case 'string':
      return typeof raw === 'string' && raw !== '' ? raw : fail('a non-empty string');
    case 'integer': {
      const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(value) && value > 0 ? value : fail('a positive integer');
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return fail('a boolean (true or false)');
    case 'listen':
      return typeof raw === 'string' && isListenAddress(raw) ? raw : fail('host:port with a port from 0 to 65535');
    case 'sync':
      return SYNC_POLICIES.includes(raw as SyncPolicy) ? raw : fail(`one of ${SYNC_POLICIES.join(', ')}`);
    case 'logLevel':
      return (LOG_LEVELS as readonly unknown[]).includes(raw) ? raw : fail(`one of ${LOG_LEVELS.join(', ')}`);
  }
}

function isListenAddress(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value);
  return match !== null && Number(match[2]) <= 65535;
}

/**
 * Resolves the configuration from its sources, highest precedence first: flags, environment,
 * file, {@link CONFIG_DEFAULTS}. Checks every value, then the limits across keys (by the
 * engine's and the server's own resolvers).
 *
 * @throws ConfigError naming the key (and where its value came from) for any bad value.
 */
export function resolveConfig(sources: ConfigSources = {}): ServeConfig {
  const resolved: Record<string, unknown> = {};
  for (const key of CONFIG_KEY_NAMES) {
    const flag = sources.flags?.[key];
    const env = sources.env?.[envName(key)];
    const file = sources.file?.values[key];
    if (flag !== undefined) resolved[key] = parseValue(key, flag, `flag ${flagName(key)}`);
    else if (env !== undefined && env !== '') resolved[key] = parseValue(key, env, `env ${envName(key)}`);
    else if (file !== undefined && sources.file !== undefined) resolved[key] = parseValue(key, file, `${sources.file.path} key ${key}`);
    else resolved[key] = CONFIG_DEFAULTS[key];
  }
  const config = Object.freeze(resolved) as unknown as ServeConfig;
  checkAcrossKeys(config);
  return config;
}

/** Runs the engine's and server's own checks, which relate keys to each other. */
function checkAcrossKeys(config: ServeConfig): void {
  try {
    resolveWalOptions({ dir: config.dataDir, ...engineOptionsOf(config) }, () => new NodeStorage());
    resolveServerOptions(serverOptionsOf(config));
  } catch (error) {
    if (!(error instanceof RangeError || error instanceof TypeError)) throw error;
    const key = firstKeyNamedIn(error.message);
    throw new ConfigError(key, 'resolved configuration', `invalid configuration: ${error.message.replace(/^options\./, '')}`);
  }
}

/** The key mentioned first in `message`, if any. */
function firstKeyNamedIn(message: string): ConfigKey | undefined {
  let first: { key: ConfigKey; index: number } | undefined;
  for (const key of CONFIG_KEY_NAMES) {
    const index = message.search(new RegExp(`\\b${key}\\b`));
    if (index >= 0 && (first === undefined || index < first.index)) first = { key, index };
  }
  return first?.key;
}

/** The engine options of a configuration (everything `Wal.open` takes but `dir`). */
export function engineOptionsOf(config: ServeConfig): Omit<WalOptions, 'dir' | 'storage' | 'clock'> {
  return {
    syncPolicy: config.sync,
    syncIntervalMs: config.syncIntervalMs,
    segmentSizeBytes: config.segmentSizeBytes,
    preallocate: config.preallocate,
    maxRecordBytes: config.maxRecordBytes,
    maxBatchBytes: config.maxBatchBytes,
    maxBatchRecords: config.maxBatchRecords,
    indexIntervalBytes: config.indexIntervalBytes,
    diskFullProbeIntervalMs: config.diskFullProbeIntervalMs,
    recoveryPointIntervalMs: config.recoveryPointIntervalMs,
    maxProducers: config.maxProducers,
    maxOpenSegmentFiles: config.maxOpenSegmentFiles,
  };
}

/** The gRPC server options of a configuration. */
export function serverOptionsOf(config: ServeConfig): ServerOptions {
  return {
    listen: config.listen,
    maxReceiveMessageBytes: config.maxReceiveMessageBytes,
    maxSendMessageBytes: config.maxSendMessageBytes,
    maxResponseBytes: config.maxResponseBytes,
    maxTailBatchRecords: config.maxTailBatchRecords,
    tailHeartbeatIntervalMs: config.tailHeartbeatIntervalMs,
    maxTailStreams: config.maxTailStreams,
    maxTailQueueBytes: config.maxTailQueueBytes,
    maxTotalTailQueueBytes: config.maxTotalTailQueueBytes,
    maxAppendStreams: config.maxAppendStreams,
    maxInFlightAppends: config.maxInFlightAppends,
    receiveWindowBytes: config.receiveWindowBytes,
    keepaliveTimeMs: config.keepaliveTimeMs,
    keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    shutdownGraceMs: config.shutdownGraceMs,
    appendLimits: {
      maxRecordBytes: config.maxRecordBytes,
      maxBatchBytes: config.maxBatchBytes,
      maxBatchRecords: config.maxBatchRecords,
    },
  };
}

/** Formats a configuration as YAML (loadable again with `--config`) or JSON. */
export function formatConfig(config: ServeConfig, format: 'yaml' | 'json'): string {
  const ordered = Object.fromEntries(CONFIG_KEY_NAMES.map((key) => [key, config[key]]));
  return format === 'json' ? `${JSON.stringify(ordered, null, 2)}\n` : stringifyYaml(ordered);
}
