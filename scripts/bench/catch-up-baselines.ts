/**
 * The ceilings of the replication benchmark's catch-up row (r1), measured in the same run:
 *
 * - {@link transportCatchUp}: grpc-js alone moving the same bytes in messages of the same size as
 *   the leader's frames tail sends, from a server process ({@link ../bench/frame-flood-child.ts})
 *   to a client that drops them, with the follower's channel settings (HTTP/2 window, largest
 *   message). No log on either side, no encoder, no decoder.
 * - {@link diskCatchUp}: plain `node:fs` writing the same bytes into a fresh file, one
 *   `writeSync` + `fdatasyncSync` per message-size chunk (what a follower that synced every
 *   message would pay for its disk alone).
 *
 * Both return records-equivalent per second: bytes per second over the log's bytes per record.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata } from '@grpc/grpc-js';

const CHILD_SCRIPT = fileURLToPath(new URL('./frame-flood-child.js', import.meta.url));
const TAIL_WAL_PATH = '/wald.v1.WalService/TailWal';
/** How long the flood server may take to print its port. */
const START_TIMEOUT_MS = 30_000;

/** The bytes of a catch-up: how many messages of how many bytes, and how many records they hold. */
export interface CatchUpShape {
  readonly messageBytes: number;
  readonly messages: number;
  readonly records: number;
}

/** The client settings a follower's channel uses (src/replication/follower-node.ts), so that only the log differs. */
export interface FollowerChannelSettings {
  readonly flowControlWindowBytes: number;
  readonly maxReceiveMessageBytes: number;
}

async function startFlood(shape: CatchUpShape): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [CHILD_SCRIPT, String(shape.messageBytes), String(shape.messages)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.stdin!.end();
    await exited;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the frame flood server did not start')), START_TIMEOUT_MS);
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line !== undefined) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once('exit', () => reject(new Error('the frame flood server exited')));
    });
    child.stdout!.resume();
    return { address: `127.0.0.1:${port}`, stop };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** grpc-js alone: records-equivalent per second of `shape` streamed to a client that drops each message. */
export async function transportCatchUp(shape: CatchUpShape, settings: FollowerChannelSettings): Promise<number> {
  const flood = await startFlood(shape);
  const client = new Client(flood.address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': settings.maxReceiveMessageBytes,
    'grpc-node.flow_control_window': settings.flowControlWindowBytes,
  });
  try {
    const start = performance.now();
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest(TAIL_WAL_PATH, (request: Buffer) => request, (response: Buffer) => response, Buffer.alloc(0), new Metadata());
      call.on('data', (message: Buffer) => {
        bytes += message.length;
      });
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    const seconds = (performance.now() - start) / 1000;
    const expected = shape.messageBytes * shape.messages;
    if (bytes !== expected) throw new Error(`the transport baseline received ${bytes} of ${expected} bytes`);
    return shape.records / seconds;
  } finally {
    client.close();
    await flood.stop();
  }
}

/** Plain node:fs: records-equivalent per second of `shape` written, one write + fdatasync per message. */
export function diskCatchUp(dir: string, shape: CatchUpShape): number {
  const path = join(dir, 'disk-baseline.bin');
  const chunk = Buffer.alloc(shape.messageBytes);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
  const fd = fs.openSync(path, 'w');
  try {
    const start = performance.now();
    let position = 0;
    for (let i = 0; i < shape.messages; i++) {
      const n = fs.writeSync(fd, chunk, 0, chunk.length, position);
      if (n !== chunk.length) throw new Error(`short write: ${n} of ${chunk.length} bytes`);
      position += n;
      fs.fdatasyncSync(fd);
    }
    return shape.records / ((performance.now() - start) / 1000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
  }
}
