import type { CallOptions, Client, ClientReadableStream, Metadata } from '@grpc/grpc-js';
import { TailWalRequest } from '../gen/wald/v1/tail.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';
import { decodeTailWalResponse, type TailBatch } from '../wire/tail-response-decoder.js';

/**
 * Opens a TailWal stream whose messages arrive as {@link TailBatch}es: records with `number`
 * offsets and byte fields that are views into the message, decoded by `src/wire/` rather than by
 * the generated codec (several times cheaper per record; what a follower catching up needs).
 *
 * `client` is any grpc-js client connected to a wald server (for example the generated
 * `WalServiceClient`). Consume the stream with `for await` or a `'data'` handler: a grpc-js stream
 * paused before its first read never applies backpressure.
 */
export function openTailWal(client: Client, request: TailWalRequest, metadata?: Metadata, options?: CallOptions): ClientReadableStream<TailBatch> {
  const definition = WalServiceService.tailWal;
  const serialize = (value: TailWalRequest): Buffer => Buffer.from(TailWalRequest.encode(value).finish());
  return metadata === undefined
    ? client.makeServerStreamRequest(definition.path, serialize, decodeTailWalResponse, request, options)
    : client.makeServerStreamRequest(definition.path, serialize, decodeTailWalResponse, request, metadata, options);
}
