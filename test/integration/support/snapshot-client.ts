/**
 * The snapshot RPCs of the generated client as promises, for the integration tests: the unary
 * calls, and GetSnapshot read to its end (the info message, then the file's bytes).
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import type {
  CreateSnapshotResponse,
  GetSnapshotResponse,
  ListSnapshotsResponse,
  SnapshotInfo,
  SnapshotKeyResponse,
  VerifySnapshotResponse,
} from '../../../src/gen/wald/v1/snapshot.js';
import type { WalServiceClient } from '../../../src/gen/wald/v1/wal_service.js';

/** A GetSnapshot stream read to its end. */
export interface FetchedSnapshot {
  /** The first message's info. */
  readonly info: SnapshotInfo;
  /** Every chunk, in order, concatenated. */
  readonly bytes: Buffer;
  /** Chunk messages received. */
  readonly chunkCount: number;
}

function unary<T>(start: (done: (error: Error | null, response: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, response) => (error === null ? resolve(response) : reject(error))));
}

/** The snapshot RPCs of `raw`. */
export class SnapshotClient {
  constructor(private readonly raw: WalServiceClient) {}

  createSnapshot(request: { compress?: boolean; incremental?: boolean } = {}): Promise<CreateSnapshotResponse> {
    return unary((done) => this.raw.createSnapshot({ compress: request.compress ?? false, incremental: request.incremental ?? false }, done));
  }

  snapshotKey(key: string | Buffer): Promise<SnapshotKeyResponse> {
    return unary((done) => this.raw.snapshotKey({ key: Buffer.from(key) }, done));
  }

  listSnapshots(pageSize = 0, pageToken = ''): Promise<ListSnapshotsResponse> {
    return unary((done) => this.raw.listSnapshots({ pageSize, pageToken }, done));
  }

  verifySnapshot(snapshotId: string): Promise<VerifySnapshotResponse> {
    return unary((done) => this.raw.verifySnapshot({ snapshotId }, done));
  }

  /** The raw GetSnapshot stream. */
  openSnapshot(snapshotId: string): ClientReadableStream<GetSnapshotResponse> {
    return this.raw.getSnapshot({ snapshotId });
  }

  /** GetSnapshot read to its end (at most `maxMessages` messages); rejects with the stream's error. */
  async getSnapshot(snapshotId: string, maxMessages = 1_000_000): Promise<FetchedSnapshot> {
    let info: SnapshotInfo | undefined;
    const chunks: Buffer[] = [];
    let messages = 0;
    for await (const message of this.openSnapshot(snapshotId) as AsyncIterable<GetSnapshotResponse>) {
      if (++messages > maxMessages) throw new Error(`more than ${maxMessages} messages`);
      if (message.content?.$case === 'info') {
        if (info !== undefined || chunks.length > 0) throw new Error('info after the first message');
        info = message.content.value;
      } else if (message.content?.$case === 'chunk') {
        if (info === undefined) throw new Error('a chunk before the info');
        chunks.push(message.content.value);
      } else {
        throw new Error('a message with no content');
      }
    }
    if (info === undefined) throw new Error('the stream sent no info');
    return { info, bytes: Buffer.concat(chunks), chunkCount: chunks.length };
  }
}
