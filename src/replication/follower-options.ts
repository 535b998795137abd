/**
 * The options of a follower (`wald serve --follow HOST:PORT`), declared once: name, default, unit,
 * documentation and check of each. `wald serve` composes them into its configuration
 * (src/config/serve-config.ts), so each is also a config key (`follow`, `follower_id`,
 * `replication.max_backoff_ms`, ...).
 */
import { booleanOption, integerOption, optionalTextOption, optionGroup } from '../options/option-spec.js';
import { OptionSet, type OptionValues } from '../options/option-set.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Whether `value` is `host:port` with a port from 1 to 65535 (a leader's address has a real port). */
function isLeaderAddress(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value);
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
}

/** Every option of a follower, in the order of `--help` and docs/configuration.md. */
export const FOLLOWER_OPTION_DECLARATIONS = {
  follow: optionalTextOption(
    {
      unit: 'host:port',
      doc: 'run as a read-only follower of the wald server at this address (docs/replication.md)',
      why:
        'Unset: the server is a leader and takes appends. Set: it copies the leader\'s log frame by frame (byte-identical), ' +
        'serves reads, tails and snapshots, refuses writes with `WAL_NOT_LEADER`, and resumes after any disconnect; ' +
        '`wald promote` makes it a leader.',
    },
    { expected: 'host:port with a port from 1 to 65535', matches: isLeaderAddress },
  ),
  followerId: optionalTextOption({
    unit: 'name',
    doc: 'the name this follower reports to its leader (GetStats followers, wald followers)',
    why: 'Stable across restarts. Unset: the host name and the absolute data directory, which stay the same as long as the follower runs from the same place.',
  }),
  replication: optionGroup({
    initialBackoffMs: integerOption({
      default: 100,
      unit: 'ms',
      doc: 'a follower\'s first wait before it reconnects to its leader after a failure',
      why: 'Doubles at each failure in a row, up to `replication.max_backoff_ms`, with jitter (half to all of the step) so that followers a leader restart disconnected together do not come back in the same millisecond.',
    }),
    maxBackoffMs: integerOption({
      default: 5000,
      unit: 'ms',
      doc: 'the longest wait of a follower between two reconnection attempts',
      why: 'A leader back from a restart is found within this long.',
    }),
    keepaliveTimeMs: integerOption({
      default: 1000,
      unit: 'ms',
      doc: 'period of the HTTP/2 pings a follower sends its leader (grpc.keepalive_time_ms)',
      why:
        'With `replication.keepalive_timeout_ms`, a leader that died without closing its connections (power loss, a cut ' +
        'network) is noticed within about their sum, and the follower reconnects. The leader must accept pings this often: ' +
        'its own `keepalive_*` keys allow them while a tail is open.',
    }),
    keepaliveTimeoutMs: integerOption({
      default: 2000,
      unit: 'ms',
      doc: 'how long a follower waits for its leader to answer a ping before it drops the connection',
      why: 'See `replication.keepalive_time_ms`.',
    }),
    maxBatchBytes: integerOption(
      {
        default: 1 * MiB,
        unit: 'bytes',
        doc: 'most frame bytes a follower asks for per TailWal message (its max_bytes)',
        why:
          'The follower reads one message, appends its frames and only then reads the next, so it holds about this much ' +
          '(one frame larger than it comes alone); HTTP/2 flow control holds the leader back meanwhile.',
      },
      { min: 4 * KiB, max: 64 * MiB },
    ),
    tls: booleanOption({
      default: false,
      doc: 'connect to the leader with TLS (implied by replication.tls_ca, tls_cert and tls_key)',
      why: 'Trusts the system CAs unless `replication.tls_ca` is given.',
    }),
    tlsCa: optionalTextOption({ unit: 'path', doc: "PEM CA certificates that signed the leader's certificate", why: 'As `wald --tls-ca` of the client commands.' }),
    tlsCert: optionalTextOption({ unit: 'path', doc: 'PEM client certificate the follower presents to a leader with mutual TLS', why: 'With `replication.tls_key`.' }),
    tlsKey: optionalTextOption({ unit: 'path', doc: 'PEM private key of replication.tls_cert', why: 'With `replication.tls_cert`.' }),
    tlsServerName: optionalTextOption({ unit: 'name', doc: "name the leader's certificate must carry (default: the host of follow)", why: 'When the leader is reached by an address its certificate does not name.' }),
    tokenFile: optionalTextOption({
      unit: 'path',
      doc: 'file holding the bearer token the follower sends its leader',
      why: 'A leader with an `auth_file` needs a `write` token: a frames-mode TailWal naming the follower, and ReportFollower, hold segments back (retention leases) and count for min_replicas; GetSnapshot needs `read`.',
    }),
  }),
};

/** The resolved options of a follower. */
export type FollowerOptionValues = OptionValues<typeof FOLLOWER_OPTION_DECLARATIONS>;

/** The follower's options and their checks (each key's own; none across keys). */
export const FOLLOWER_OPTIONS = new OptionSet(FOLLOWER_OPTION_DECLARATIONS, []);
