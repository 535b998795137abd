/**
 * The configuration of `wald serve`: the engine's, the key-value view's and the server's declared
 * options, composed with the keys only `wald serve` has (data directory, storage, log level). Flags,
 * `WALD_*` variables, the YAML file, `--help`, `--print-config` and the key table of
 * docs/configuration.md are derived from these declarations (see {@link ConfigKey} for the names).
 *
 * Precedence: flags > environment > file > defaults. The file is named by `--config` or
 * `WALD_CONFIG`; without one, no file is read.
 */
import { STORAGE_OPTION_DECLARATIONS, type StorageChoiceOptions, type StorageKind } from '../engine/storage-options.js';
import { WAL_OPTION_DECLARATIONS, WAL_OPTIONS, type WalOptionValues } from '../engine/wal-options.js';
import { liftRules, mergeDeclarations, OptionSet, type OptionValues } from '../options/option-set.js';
import { choiceOption, optionGroup, textOption } from '../options/option-spec.js';
import { FOLLOWER_OPTION_DECLARATIONS, type FollowerOptionValues } from '../replication/follower-options.js';
import { SERVER_OPTION_DECLARATIONS, SERVER_OPTIONS, type ResolvedServerOptions } from '../server/server-options.js';
import { STATE_OPTION_DECLARATIONS, type StateOptionValues } from '../state/state-options.js';
import { ConfigSchema } from './config-schema.js';

/** Levels of the JSON log, least to most verbose; `silent` logs nothing. */
export const LOG_LEVELS = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** A level of the JSON log; see {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Environment variable naming the config file when `--config` is not given. */
export const CONFIG_FILE_ENV = 'WALD_CONFIG';

/** Prefix of the environment variable of every key. */
export const CONFIG_ENV_PREFIX = 'WALD_';

const { listen, replication: leaderReplication, ...serverLimits } = SERVER_OPTION_DECLARATIONS;
const { replication: followerReplication, ...followerKeys } = FOLLOWER_OPTION_DECLARATIONS;

/**
 * The `replication.*` keys: the follower's (backoff, keepalive, batch, TLS to the leader) and the
 * leader's (min_replicas timeout, followers tracked, retention leases) in one group, as one key
 * name may be declared once; each side gets its own members back (`serverOptionsOf`,
 * `followerOptionsOf`).
 */
const REPLICATION_GROUP = optionGroup({ ...followerReplication.members, ...leaderReplication.members });

/** Every key of `wald serve`, in the order of `--help`, `--print-config` and the docs. */
export const SERVE_OPTION_DECLARATIONS = mergeDeclarations(
  { listen },
  {
    dataDir: textOption({
      default: './data',
      unit: 'path',
      doc: 'directory of the log files (created if missing)',
      why:
        'Relative to the working directory, so `npm start` needs no setup. Locked while the server runs. The engine option is `dir`. ' +
        'Under `storage: memory` only a name: nothing is created there.',
    }),
  },
  STORAGE_OPTION_DECLARATIONS,
  WAL_OPTION_DECLARATIONS,
  STATE_OPTION_DECLARATIONS,
  serverLimits,
  followerKeys,
  { replication: REPLICATION_GROUP },
  {
    logLevel: choiceOption(LOG_LEVELS, {
      default: 'info',
      unit: 'level',
      doc: 'level of the JSON log written to stdout',
      why:
        '`info` logs startup, recovery, listening addresses, segment rolls, disk-full and read-only changes, ' +
        'snapshots, compactions, shutdown and warnings (docs/server.md lists every line); `debug` adds the resolved ' +
        'configuration, per-stream events and the failures of calls refused for their request. On a terminal the ' +
        'lines are printed readably (pino-pretty) instead of as JSON.',
    }),
  },
);

/** The resolved configuration of `wald serve`: every key, by its camelCase name. */
export type ServeConfig = OptionValues<typeof SERVE_OPTION_DECLARATIONS>;

/** The engine options of a configuration (everything `Wal.open` takes but `dir`, `storage` and `clock`). */
export function engineOptionsOf(config: ServeConfig): WalOptionValues {
  return pick(config, namesOf(WAL_OPTION_DECLARATIONS));
}

/** The storage a configuration chooses (`storage`) and the cap of a memory one: what `openStorage` takes. */
export function storageOptionsOf(config: ServeConfig): { readonly storage: StorageKind } & StorageChoiceOptions {
  return pick(config, namesOf(STORAGE_OPTION_DECLARATIONS));
}

/** The options of the key-value view of a configuration (its cap and snapshot directory). */
export function stateOptionsOf(config: ServeConfig): StateOptionValues {
  return pick(config, namesOf(STATE_OPTION_DECLARATIONS));
}

/** The gRPC server options of a configuration, with the log's limits the server checks its own against. */
export function serverOptionsOf(config: ServeConfig): ResolvedServerOptions {
  const { maxRecordBytes, maxBatchBytes, maxBatchRecords } = config;
  return {
    ...pick(config, namesOf(SERVER_OPTION_DECLARATIONS)),
    replication: members(config.replication, leaderReplication.members),
    appendLimits: { maxRecordBytes, maxBatchBytes, maxBatchRecords },
  };
}

/** The follower options of a configuration (`follow` unset: the server is a leader). */
export function followerOptionsOf(config: ServeConfig): FollowerOptionValues {
  return { ...pick(config, namesOf(FOLLOWER_OPTION_DECLARATIONS)), replication: members(config.replication, followerReplication.members) };
}

/** The values of `group` that `declared` declares: one side's part of a shared group. */
function members<G extends object, M extends object>(group: G, declared: M): Pick<G, keyof M & keyof G> {
  return Object.fromEntries(Object.keys(declared).map((name) => [name, group[name as keyof G]])) as Pick<G, keyof M & keyof G>;
}

/** The names `declarations` declares. */
function namesOf<D extends object>(declarations: D): (keyof D & keyof ServeConfig)[] {
  return Object.keys(declarations) as (keyof D & keyof ServeConfig)[];
}

/** The values of `names` in `config`. */
function pick<K extends keyof ServeConfig>(config: ServeConfig, names: readonly K[]): Pick<ServeConfig, K> {
  return Object.fromEntries(names.map((name) => [name, config[name]])) as Pick<ServeConfig, K>;
}

/** The keys of `wald serve` and their checks: each key's own, then the engine's and server's rules across keys. */
export const SERVE_OPTIONS = new OptionSet(SERVE_OPTION_DECLARATIONS, [
  ...liftRules(WAL_OPTIONS.rules, engineOptionsOf),
  ...liftRules(SERVER_OPTIONS.rules, serverOptionsOf),
]);

/** The configuration of `wald serve`: its keys' names in every source, reading and printing. */
export const SERVE_CONFIG = new ConfigSchema(SERVE_OPTIONS, CONFIG_ENV_PREFIX);
