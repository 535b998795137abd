/**
 * The transport baseline of the replication benchmark's catch-up row, as a server process of its
 * own (as the leader is):
 *
 * ```sh
 * node dist/scripts/bench/frame-flood-child.js MESSAGE_BYTES MESSAGES
 * ```
 *
 * A grpc-js server with one server-streaming method at TailWal's path whose handler, for each
 * call, writes MESSAGES prebuilt messages of MESSAGE_BYTES bytes (serialized as they are: no
 * encoder) as fast as HTTP/2 flow control lets it (it waits for `drain` whenever `write()` returns
 * false), then ends the call. It holds no log and reads no file: what is left is grpc-js moving the
 * bytes of a catch-up, the ceiling of a follower copying frames over it.
 *
 * It listens on 127.0.0.1 (a free port), prints one line `{"port":N}` on stdout, and exits when
 * its stdin closes or on SIGTERM.
 */
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { SERVER_DEFAULTS } from '../../src/server/server-options.js';

/** The path of TailWal, so that the call is routed and framed as a follower's. */
const TAIL_WAL_PATH = '/wald.v1.WalService/TailWal';
const MAX_MESSAGES = 10_000_000;

function identity(bytes: Buffer): Buffer {
  return bytes;
}

function flood(call: ServerWritableStream<Buffer, Buffer>, message: Buffer, messages: number): void {
  let sent = 0;
  let isCancelled = false;
  call.on('cancelled', () => {
    isCancelled = true;
  });
  const pump = (): void => {
    while (!isCancelled && sent < messages) {
      sent++;
      if (!call.write(message)) {
        call.once('drain', pump);
        return;
      }
    }
    if (!isCancelled) call.end();
  };
  pump();
}

async function main(): Promise<void> {
  const messageBytes = Number(process.argv[2]);
  const messages = Number(process.argv[3]);
  if (!Number.isSafeInteger(messageBytes) || messageBytes <= 0 || !Number.isSafeInteger(messages) || messages <= 0 || messages > MAX_MESSAGES) {
    throw new RangeError('usage: frame-flood-child.js MESSAGE_BYTES MESSAGES');
  }
  // Bytes that are not all zeros, as frames are not.
  const message = Buffer.alloc(messageBytes);
  for (let i = 0; i < messageBytes; i++) message[i] = (i * 31 + 7) & 0xff;
  // The transport settings of a WaldServer with default options.
  const server = new Server({
    'grpc.max_receive_message_length': SERVER_DEFAULTS.maxReceiveMessageBytes,
    'grpc.max_send_message_length': SERVER_DEFAULTS.maxSendMessageBytes,
    'grpc.keepalive_time_ms': SERVER_DEFAULTS.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': SERVER_DEFAULTS.keepaliveTimeoutMs,
  });
  server.register(TAIL_WAL_PATH, (call: ServerWritableStream<Buffer, Buffer>) => flood(call, message, messages), identity, identity, 'serverStream');
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ port }) + '\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
