import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { engineOptionsOf, followerOptionsOf, SERVE_CONFIG, serverOptionsOf, stateOptionsOf, storageOptionsOf, type ServeConfig } from '../config/serve-config.js';
import { openStorage } from '../engine/storage-options.js';
import { FollowerNode } from '../replication/follower-node.js';
import { AuthFileError } from '../server/auth/auth-file.js';
import { TlsFilesError } from '../server/tls/reloadable-certificates.js';
import { WaldServer } from '../server/wald-server.js';
import type { LogLevel } from '../config/serve-config.js';
import { bearerTokenInterceptor, channelCredentialsOf, tokenOf } from './client-credentials.js';
import { CommandFailure, EXIT_CODES } from './exit-codes.js';

/** The signals that stop `wald serve` gracefully. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Resolves when a stop signal arrives; a second signal during shutdown exits at once with 1. */
function stopSignalReceived(logger: Logger): { received: Promise<NodeJS.Signals>; dispose: () => void } {
  let first: NodeJS.Signals | undefined;
  let resolveReceived: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    resolveReceived = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first === undefined) {
      first = signal;
      resolveReceived(signal);
      return;
    }
    logger.warn({ signal }, 'second signal during shutdown: exiting now');
    process.exit(EXIT_CODES.serverError);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return { received, dispose: () => STOP_SIGNALS.forEach((signal) => process.off(signal, onSignal)) };
}

/**
 * The logger of `wald serve` at `level`: JSON lines on stdout, or, when stdout is a terminal, the
 * same lines made readable by pino-pretty. pino-pretty runs as a stream in this thread (not as a
 * worker-thread transport), written synchronously, so the last lines before an exit are not lost.
 */
export function serveLogger(level: LogLevel, isTerminal = process.stdout.isTTY === true): Logger {
  const destination = isTerminal
    ? PinoPretty({ destination: 1, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ dest: 1, sync: true });
  return pino({ name: 'wald', level }, destination);
}

/**
 * Re-reads the server's TLS files and auth file at each SIGHUP (the server logs what it did).
 * Listening from the start: Node's default for SIGHUP ends the process, which a rotation script
 * signalling a server still recovering must not do.
 */
function reloadOnHangUp(logger: Logger, server: () => WaldServer | undefined): () => void {
  const onHangUp = (): void => {
    const serving = server();
    if (serving === undefined) {
      logger.warn('SIGHUP before the server started: nothing to reload (the files are read at start)');
      return;
    }
    logger.info('SIGHUP received: reloading the TLS files and the auth file');
    void serving.reloadSecurity();
  };
  process.on('SIGHUP', onHangUp);
  return () => process.off('SIGHUP', onHangUp);
}

/**
 * Opens the log, serves it until SIGINT or SIGTERM (re-reading the TLS files and auth file at
 * SIGHUP), then stops gracefully (new calls refused,
 * tails ended with UNAVAILABLE, log synced and closed). Throws `CommandFailure` when the log cannot
 * be opened or the address cannot be bound.
 */
export async function runServer(config: ServeConfig): Promise<void> {
  if (config.follow !== undefined) return runFollower(config);
  const logger = serveLogger(config.logLevel);
  // Listening for signals before the log opens: a SIGTERM during recovery still stops cleanly.
  const signals = stopSignalReceived(logger);
  let started: WaldServer | undefined;
  const stopReloading = reloadOnHangUp(logger, () => started);
  try {
    logger.debug({ config: SERVE_CONFIG.fileForm(config) }, 'configuration');
    const { storage, ...storageOptions } = storageOptionsOf(config);
    if (storage === 'memory') {
      logger.info({ storage, dataDir: config.dataDir }, 'storage is memory: nothing is written to disk, and the log is gone when the server exits');
    }
    let opened;
    try {
      opened = await WaldServer.open(
        { dir: config.dataDir, ...engineOptionsOf(config), storage: openStorage(storage, storageOptions) },
        { ...serverOptionsOf(config), state: stateOptionsOf(config) },
        logger,
      );
    } catch (error) {
      logger.fatal({ err: error, dataDir: config.dataDir }, 'cannot open the log');
      throw new CommandFailure(`cannot open the log in ${config.dataDir}: ${(error as Error).message}`);
    }
    const { server, report, stateReport } = opened;
    logger.info({ dataDir: config.dataDir, storage, syncPolicy: config.syncPolicy, recovery: report, stateRecovery: stateReport }, 'log recovered');
    try {
      await server.start();
    } catch (error) {
      const isSecurityFile = error instanceof TlsFilesError || error instanceof AuthFileError;
      if (isSecurityFile) logger.fatal({ err: error }, 'cannot start: a security file cannot be used');
      else logger.fatal({ err: error, listen: config.listen }, 'cannot listen');
      await server.stop();
      const message = (error as Error).message;
      throw new CommandFailure(isSecurityFile ? `cannot start: ${message}` : `cannot listen on ${config.listen}: ${message}`);
    }
    started = server;
    const signal = await signals.received;
    logger.info({ signal }, 'stop signal received');
    await server.stop();
  } finally {
    stopReloading();
    signals.dispose();
  }
}

/**
 * `wald serve --follow HOST:PORT`: a read-only follower of the leader at `follow` (see
 * `FollowerNode`), served until SIGINT or SIGTERM, or until replication stops on an error (a frame
 * that fails its checks, a log that cannot be written): then it exits with a `CommandFailure`.
 * The leader is reached with the `replication.tls*` and `replication.token_file` keys.
 */
async function runFollower(config: ServeConfig): Promise<void> {
  const logger = serveLogger(config.logLevel);
  const signals = stopSignalReceived(logger);
  let node: FollowerNode | undefined;
  const stopReloading = reloadOnHangUp(logger, () => node?.server);
  try {
    logger.debug({ config: SERVE_CONFIG.fileForm(config) }, 'configuration');
    const follower = followerOptionsOf(config);
    const { storage, ...storageOptions } = storageOptionsOf(config);
    const r = follower.replication;
    const security = { tls: r.tls, tlsCa: r.tlsCa, tlsCert: r.tlsCert, tlsKey: r.tlsKey, tokenFile: r.tokenFile };
    const credentials = channelCredentialsOf(security, {});
    const token = tokenOf(security, {});
    try {
      node = await FollowerNode.start({
        walOptions: { dir: config.dataDir, ...engineOptionsOf(config), storage: openStorage(storage, storageOptions) },
        serverOptions: { ...serverOptionsOf(config), state: stateOptionsOf(config) },
        follower,
        credentials,
        interceptors: token === undefined ? undefined : [bearerTokenInterceptor(token)],
        logger,
      });
    } catch (error) {
      logger.fatal({ err: error, dataDir: config.dataDir, leader: config.follow }, 'cannot start the follower');
      throw new CommandFailure(`cannot start the follower of ${config.follow} in ${config.dataDir}: ${(error as Error).message}`);
    }
    const outcome = await Promise.race([signals.received, node.failed.catch((error: unknown) => error as Error)]);
    if (typeof outcome === 'string') {
      logger.info({ signal: outcome }, 'stop signal received');
      await node.stop();
      return;
    }
    await node.stop();
    throw new CommandFailure(`replication from ${config.follow} stopped: ${outcome.message}`);
  } finally {
    stopReloading();
    signals.dispose();
  }
}
