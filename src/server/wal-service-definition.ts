import { TailWalResponse } from '../gen/wald/v1/tail.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';

/**
 * `wald.v1.WalService` as the server registers it: the generated definition, except that TailWal
 * responses may be written already encoded (a `Buffer` from `src/wire/tail-response-encoder.ts`),
 * which the serializer then passes through. Requests and every other RPC use the generated codec.
 */
export const walServiceDefinition = {
  ...WalServiceService,
  tailWal: {
    ...WalServiceService.tailWal,
    responseSerialize: (value: TailWalResponse | Buffer): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(TailWalResponse.encode(value).finish()),
  },
} as const;
