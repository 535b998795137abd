import { AppendStreamResponse } from '../gen/wald/v1/append.js';
import { ReadResponse } from '../gen/wald/v1/read.js';
import { TailWalResponse } from '../gen/wald/v1/tail.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';
import { decodeAppendStreamRequest } from '../wire/append-stream-request-decoder.js';
import { strictRequestDeserializer } from './strict-requests.js';

/**
 * `wald.v1.WalService` as the server registers it: the generated definition, except that TailWal,
 * Read and AppendStream responses may be written already encoded (a `Buffer` from
 * `src/wire/tail-response-encoder.ts`, `read-response-encoder.ts` or
 * `append-stream-response-encoder.ts`), which their serializers then pass through, and that
 * AppendStream requests are decoded by hand (`src/wire/append-stream-request-decoder.ts`: the
 * generated types, byte fields as views, several times cheaper per record). Every other request
 * and RPC uses the generated codec, each request checked first by {@link strictRequestDeserializer}.
 */
export const walServiceDefinition = {
  ...strictly(WalServiceService),
  appendStream: {
    ...WalServiceService.appendStream,
    requestDeserialize: decodeAppendStreamRequest,
    responseSerialize: (value: AppendStreamResponse | Buffer): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(AppendStreamResponse.encode(value).finish()),
  },
  read: {
    ...WalServiceService.read,
    responseSerialize: (value: ReadResponse | Buffer): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(ReadResponse.encode(value).finish()),
  },
  tailWal: {
    ...WalServiceService.tailWal,
    responseSerialize: (value: TailWalResponse | Buffer): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(TailWalResponse.encode(value).finish()),
  },
} as const;

/** `service` with every request deserializer made strict ({@link strictRequestDeserializer}). */
function strictly<S extends Record<string, { readonly path: string; readonly requestDeserialize: (bytes: Buffer) => unknown }>>(service: S): S {
  const strict: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service)) {
    const [, serviceName, methodName] = /^\/([^/]+)\/([^/]+)$/.exec(method.path)!;
    strict[key] = { ...method, requestDeserialize: strictRequestDeserializer(serviceName!, methodName!, method.requestDeserialize) };
  }
  return strict as S;
}
