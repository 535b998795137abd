import { EventEmitter } from 'node:events';
import { WalError } from '../errors.js';

/** What the registry needs of a long-lived call it tracks. */
export interface RegisteredStream {
  /** Ends the stream because the server stops; resolves once the stream's work is over. */
  shutdown(): Promise<void>;
}

/** Events of a {@link StreamRegistry}: a stream was admitted, a stream ended. */
export interface StreamRegistryEvents<T> {
  open: [stream: T];
  close: [stream: T];
}

/**
 * The open streams of one kind (tails, append streams): a named limit on how many may be open at
 * once, the list the server ends at shutdown, and events for observers (stats, tests).
 */
export class StreamRegistry<T extends RegisteredStream> extends EventEmitter<StreamRegistryEvents<T>> {
  private readonly streams = new Set<T>();
  private isClosed = false;

  /**
   * @param kind what the streams are, for error messages (`TailWal`, `AppendStream`).
   * @param limit most streams open at once.
   * @param configKey the config key that sets `limit` (`max_tail_streams`), named in the error.
   */
  constructor(
    readonly kind: string,
    readonly limit: number,
    readonly configKey: string,
  ) {
    super();
  }

  /** Streams open right now. */
  get size(): number {
    return this.streams.size;
  }

  /** A snapshot of the open streams. */
  list(): readonly T[] {
    return [...this.streams];
  }

  /**
   * Admits a stream.
   *
   * @throws WalError `WAL_TOO_MANY_STREAMS` (details `kind`, `limit`, `configKey`) when `limit` streams are
   *   open; `WAL_SHUTTING_DOWN` once {@link shutdownAll} has begun.
   */
  add(stream: T): void {
    if (this.isClosed) {
      throw new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down', {});
    }
    if (this.streams.size >= this.limit) {
      throw new WalError('WAL_TOO_MANY_STREAMS', `${this.limit} ${this.kind} streams are open already (${this.configKey})`, {
        kind: this.kind,
        limit: this.limit,
        configKey: this.configKey,
      });
    }
    this.streams.add(stream);
    this.emit('open', stream);
  }

  /** Forgets a stream that ended. Idempotent. */
  delete(stream: T): void {
    if (this.streams.delete(stream)) {
      this.emit('close', stream);
    }
  }

  /** Refuses new streams and ends every open one; resolves when all of them have wound down. */
  async shutdownAll(): Promise<void> {
    this.isClosed = true;
    await Promise.all([...this.streams].map((stream) => stream.shutdown()));
  }
}
