/**
 * Keepalive enforcement of a real `wald serve` child (`keepalive_min_ping_interval_ms`,
 * `keepalive_max_ping_strikes`): a raw HTTP/2 client flooding PINGs is sent GOAWAY
 * `ENHANCE_YOUR_CALM` `too_many_pings` and cut off, logged and counted, while other clients go on;
 * a WalClient whose keepalive pings a long idle tail is left alone (and the same client is cut off
 * by a server that asks for longer between PINGs, so it does ping: its tail fails then with the
 * RESOURCE_EXHAUSTED grpc-js makes of ENHANCE_YOUR_CALM, and its next call reconnects).
 */
import assert from 'node:assert/strict';
import { connect as connectHttp2, constants as http2Constants, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { TailEvent } from '../../src/client/resuming-tail.js';
import { WalClient } from '../../src/client/wal-client.js';
import { WalClientError } from '../../src/client/wal-client-error.js';
import { AppendRequest } from '../../src/gen/wald/v1/append.js';
import { TailWalRequest, type TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import { parseExposition, sampleValue } from '../support/prometheus-text.js';
import { makeTempDir } from '../support/temp-dir.js';
import { rawClient, startServe, unary, type ServeChild } from '../support/wald-serve-child.js';

/** Polls of a condition, 25 ms apart: a bound on every wait (10 s), never an assertion on time. */
const MAX_POLLS = 400;

async function pollUntil(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (await condition()) return;
    await sleep(25);
  }
  assert.fail(`gave up waiting: ${what}`);
}

/** A child with its metrics on, no heartbeats for a minute (nothing written to an idle tail), and `args`. */
async function startChild(args: readonly string[] = []): Promise<{ child: ServeChild; metrics: () => Promise<string>; remove: () => void }> {
  const temp = makeTempDir('wald-keepalive-');
  const child = await startServe(join(temp.dir, 'data'), ['--sync-policy', 'none', '--metrics-listen', '127.0.0.1:0', ...args, '--tail-heartbeat-interval-ms', '60000']);
  const address = (await child.waitForLog((line) => line['msg'] === 'metrics listening'))['address'] as string;
  const metrics = async (): Promise<string> => (await fetch(`http://${address}/metrics`)).text();
  return { child, metrics, remove: temp.remove };
}

function tooManyPings(text: string): number {
  return sampleValue(parseExposition(text), 'wald_too_many_pings_total');
}

/** Sends PINGs one after the other, each once the previous is acknowledged, until the server closes: the acknowledged count. */
async function floodPings(session: ClientHttp2Session, most: number): Promise<number> {
  let acked = 0;
  for (let i = 0; i < most && !session.closed && !session.destroyed; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      try {
        session.ping((error) => resolve(error === null));
      } catch {
        resolve(false);
      }
    });
    if (!ok) break;
    acked++;
  }
  return acked;
}

/** The value of the next record the tail yields, past heartbeats (at most 100 events). */
async function nextValue(tail: AsyncGenerator<TailEvent, void, undefined>): Promise<string | undefined> {
  for (let event = 0; event < 100; event++) {
    const step = await tail.next();
    if (step.done === true) return undefined;
    if (step.value.records.length > 0) return step.value.records[0]!.value.toString();
  }
  return undefined;
}

describe('keepalive enforcement of a wald serve child', { timeout: 120_000 }, () => {
  test('a client flooding PINGs gets GOAWAY ENHANCE_YOUR_CALM too_many_pings after its strikes; other clients go on', async () => {
    // A long minimum interval: on a loaded machine one PING's round trip may take longer than the
    // default 250 ms, and a PING that late would be no strike, changing the count below.
    const { child, metrics, remove } = await startChild(['--keepalive-min-ping-interval-ms', '10000']);
    const other = rawClient(child.address);
    let flooder: ClientHttp2Session | undefined;
    try {
      // Another client with a tail open, on its own connection.
      const received: TailWalResponse[] = [];
      const tail = other.tailWal(TailWalRequest.fromPartial({ start: { $case: 'fromOffset', value: 0n } }));
      tail.on('data', (message: TailWalResponse) => received.push(message));
      tail.on('error', () => {});
      await unary((callback) => other.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('before') }] }), callback));
      await pollUntil('the tail got the first record', () => received.length > 0);

      const session = connectHttp2(`http://${child.address}`);
      flooder = session;
      const goaway = new Promise<{ code: number; data: string }>((resolve) => {
        session.on('goaway', (code, _lastStreamId, data) => resolve({ code, data: data?.toString('ascii') ?? '' }));
      });
      const closed = new Promise<void>((resolve) => session.on('close', resolve));
      session.on('error', () => {});
      await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
      // The first PING has no previous one; the next three come at once: strikes 1, 2, and 3 > 2,
      // which closes the connection (the third's acknowledgement is already on its way).
      assert.equal(await floodPings(session, 1000), 4, 'PINGs acknowledged before the server closed');
      assert.deepEqual(await goaway, { code: http2Constants.NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_pings' });
      await closed;

      const line = await child.waitForLog((entry) => String(entry['msg']).startsWith('too many pings'));
      assert.equal(line['level'], 40, 'logged at warn');
      assert.match(String(line['peer']), /^127\.0\.0\.1:\d+$/);
      assert.equal(tooManyPings(await metrics()), 1);

      // The other connection and its tail were not touched.
      await unary((callback) => other.append(AppendRequest.fromPartial({ records: [{ value: Buffer.from('after') }] }), callback));
      await pollUntil('the tail got the record appended after', () => received.some((message) => message.records.some((record) => record.value.toString() === 'after')));
    } finally {
      flooder?.destroy();
      other.close();
      await child.stop();
      remove();
    }
  });

  test('a WalClient whose keepalive pings a long idle tail is not disconnected; a server asking for longer between PINGs cuts it off', async () => {
    // A PING every 400 ms, nothing written to the tail for 3 s: some seven PINGs with no data between.
    const keepalive = { 'grpc.keepalive_time_ms': 400, 'grpc.keepalive_timeout_ms': 5000 };
    for (const { args, isCutOff } of [
      { args: [], isCutOff: false },
      { args: ['--keepalive-min-ping-interval-ms', '2000'], isCutOff: true },
    ]) {
      const { child, metrics, remove } = await startChild(args);
      const client = new WalClient(child.address, { channelOptions: keepalive });
      const abort = new AbortController();
      try {
        await client.append([{ value: Buffer.from('first') }]);
        const tail = client.tail(0, { signal: abort.signal });
        assert.equal(await nextValue(tail), 'first');
        if (isCutOff) {
          await pollUntil('the server cut the client off', async () => tooManyPings(await metrics()) >= 1);
          // Node ends the calls of a connection closed with ENHANCE_YOUR_CALM with that code, which
          // grpc-js reports as RESOURCE_EXHAUSTED: the tail fails; the client's next call reconnects.
          await assert.rejects(nextValue(tail), (error: unknown) => error instanceof WalClientError && error.code === status.RESOURCE_EXHAUSTED);
          await client.append([{ value: Buffer.from('second') }]);
          assert.equal((await client.read(1)).records[0]?.value.toString(), 'second');
        } else {
          await sleep(3000);
          const text = await metrics();
          assert.equal(tooManyPings(text), 0, 'no connection closed for its pings');
          assert.equal(sampleValue(parseExposition(text), 'wald_rpcs_total', { rpc: 'TailWal', outcome: 'CANCELLED' }), 0, 'the tail never ended');
          await client.append([{ value: Buffer.from('second') }]);
          assert.equal(await nextValue(tail), 'second', 'the same tail goes on');
        }
        abort.abort();
        await tail.return(undefined);
      } finally {
        abort.abort();
        await client.close();
        await child.stop();
        remove();
      }
    }
  });
});
