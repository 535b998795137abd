import { ReadResponse } from '../gen/wald/v1/read.js';
import { TailWalResponse } from '../gen/wald/v1/tail.js';
import { WalServiceService } from '../gen/wald/v1/wal_service.js';

/**
 * `wald.v1.WalService` as the server registers it: the generated definition, except that TailWal
 * and Read responses may be written already encoded (a `Buffer` from
 * `src/wire/tail-response-encoder.ts` or `read-response-encoder.ts`), which their serializers then
 * pass through. Requests and every other RPC use the generated codec.
 */
export const walServiceDefinition = {
  ...WalServiceService,
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
