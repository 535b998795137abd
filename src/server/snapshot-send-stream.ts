import { EventEmitter } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WalError } from '../errors.js';
import type { GetSnapshotRequest, GetSnapshotResponse } from '../gen/wald/v1/snapshot.js';
import { findSnapshot, SnapshotByteReader } from '../state/snapshot-catalog.js';
import type { StateKeeper } from '../state/state-keeper.js';
import { toRpcFailure, toServiceError } from './rpc-failure.js';
import { snapshotInfoMessage } from './snapshot-info-message.js';
import type { RegisteredStream } from './stream-registry.js';

/**
 * Bytes of the file per GetSnapshot message: 256 KiB. Far below the 4 MiB that gRPC clients
 * accept by default, so any client can receive it; large enough that the per-message cost
 * (framing, a write callback) is nothing beside the bytes; and it bounds what a stream holds.
 */
export const GET_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/**
 * Messages a GetSnapshot stream writes before the transport has taken the earlier ones: one
 * being sent while the next is read from disk. So a stream holds about two chunks however slow
 * its client (the call's own buffer would let it queue 16).
 */
export const MAX_QUEUED_MESSAGES = 2;

/** Events of a {@link SnapshotSendStream}. */
export interface SnapshotSendStreamEvents {
  /** The stream stopped reading the file until the transport takes a queued message (flow control). */
  blocked: [];
}

/** The call of one GetSnapshot. */
export type SnapshotCall = ServerWritableStream<GetSnapshotRequest, GetSnapshotResponse>;

/**
 * One GetSnapshot call: the snapshot's `SnapshotInfo` (with the checksum its trailer holds), then
 * the file's bytes in {@link GET_SNAPSHOT_CHUNK_BYTES} chunks, then OK. It reads the next chunk
 * only while fewer than {@link MAX_QUEUED_MESSAGES} messages await the transport, so a slow client
 * slows the stream and never grows the server's memory (flow control, as TailWal).
 *
 * Fails the call with `WAL_INVALID_ARGUMENT` (field `snapshot_id`), `WAL_SNAPSHOT_NOT_FOUND`,
 * `WAL_CORRUPTION` (an unreadable header or trailer), `WAL_IO_ERROR` (a failed read), and
 * `WAL_SHUTTING_DOWN` when the server stops meanwhile.
 */
export class SnapshotSendStream extends EventEmitter<SnapshotSendStreamEvents> implements RegisteredStream {
  private stopReason: 'cancelled' | 'shutdown' | undefined;
  private wake: (() => void) | undefined;
  private finished: Promise<void> | undefined;
  private queuedMessages = 0;
  private messagesSent = 0;
  private bytesSent = 0;
  private isCallOver = false;
  private readonly callOver: Promise<void>;

  constructor(
    private readonly call: SnapshotCall,
    private readonly state: StateKeeper,
    private readonly logger: Logger,
  ) {
    super();
    // grpc-js emits 'cancelled' once the call is over however it ends (client cancel, lost
    // connection, or the status sent after every message), as TailStream relies on too.
    this.callOver = new Promise<void>((resolve) => {
      call.on('cancelled', () => {
        this.isCallOver = true;
        this.stop('cancelled');
        resolve();
      });
    });
  }

  /**
   * Sends the snapshot to its end; never rejects (failures become the call's status). Resolves
   * once the call is over, so that the stream counts against the limit while the file is open or
   * its messages are queued.
   */
  run(): Promise<void> {
    this.finished ??= this.send().then(() => this.callOver);
    return this.finished;
  }

  /** Ends the stream with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`); resolves once it has stopped. */
  async shutdown(): Promise<void> {
    this.stop('shutdown');
    await this.finished;
  }

  /** Messages and file bytes written to the call, and messages the transport has not taken yet. */
  counters(): { messagesSent: number; bytesSent: number; queuedMessages: number } {
    return { messagesSent: this.messagesSent, bytesSent: this.bytesSent, queuedMessages: this.queuedMessages };
  }

  private async send(): Promise<void> {
    let reader: SnapshotByteReader | undefined;
    try {
      const { storage, snapshotDir } = this.state;
      const info = findSnapshot(storage, snapshotDir, this.call.request.snapshotId);
      reader = SnapshotByteReader.open(storage, info);
      await this.write({ content: { $case: 'info', value: snapshotInfoMessage(info, info.checksum) } }, 0);
      for (;;) {
        this.checkRunning();
        const chunk = await reader.next(GET_SNAPSHOT_CHUNK_BYTES);
        if (chunk === undefined) break;
        this.checkRunning();
        await this.write({ content: { $case: 'chunk', value: chunk } }, chunk.length);
      }
      this.checkRunning();
      this.call.end();
    } catch (error) {
      if (!this.isCallOver) {
        const failure = this.stopReason === 'shutdown' ? shuttingDown() : error;
        this.call.emit('error', toServiceError(toRpcFailure(failure, this.logger, { rpc: 'GetSnapshot' })));
      }
    } finally {
      reader?.close();
    }
  }

  /** Writes one message, then waits while {@link MAX_QUEUED_MESSAGES} are queued (or the stream stops). */
  private async write(message: GetSnapshotResponse, fileBytes: number): Promise<void> {
    this.queuedMessages++;
    this.call.write(message, () => {
      this.queuedMessages--;
      this.wakeUp();
    });
    this.messagesSent++;
    this.bytesSent += fileBytes;
    if (this.stopReason === undefined && this.queuedMessages >= MAX_QUEUED_MESSAGES) this.emit('blocked');
    while (this.stopReason === undefined && this.queuedMessages >= MAX_QUEUED_MESSAGES) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private checkRunning(): void {
    if (this.stopReason !== undefined) throw shuttingDown();
  }

  private stop(reason: 'cancelled' | 'shutdown'): void {
    this.stopReason ??= reason;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function shuttingDown(): WalError {
  return new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down; ask for the snapshot again', {});
}
