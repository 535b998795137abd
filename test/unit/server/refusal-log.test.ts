import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { isWalError } from '../../../src/errors.js';
import { accessTokenDigest, bearerValueOf } from '../../../src/server/auth/access-token.js';
import { RefusalLog } from '../../../src/server/auth/refusal-log.js';
import { TokenAuthenticator } from '../../../src/server/auth/token-authenticator.js';
import { FakeClock } from '../../support/fake-clock.js';

/** A pino logger whose JSON lines are collected, parsed. */
function collectingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Lets pino's writes reach the sink. */
const flushed = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('refusal lines: at most the budget a second; the next line written says how many were left out', async () => {
  const { logger, lines } = collectingLogger();
  const clock = new FakeClock(10_000);
  const log = new RefusalLog(logger, 3, clock.now);
  for (let i = 0; i < 10; i++) log.warn({ call: i }, 'authentication failed');
  assert.equal(log.suppressedCount, 7);
  clock.advance(999);
  log.warn({ call: 10 }, 'authentication failed');
  assert.equal(log.suppressedCount, 8, 'still the same second: left out too');
  clock.advance(1);
  log.warn({ call: 11 }, 'authentication failed');
  log.warn({ call: 12 }, 'authentication failed');
  await flushed();
  assert.deepEqual(
    lines.map((line) => [line['call'], line['suppressed']]),
    [[0, undefined], [1, undefined], [2, undefined], [11, 8], [12, undefined]],
  );
  assert.equal(log.suppressedCount, 0);
});

test('refusal lines: a budget of 0 logs none and counts every one', async () => {
  const { logger, lines } = collectingLogger();
  const log = new RefusalLog(logger, 0, () => 0);
  for (let i = 0; i < 5; i++) log.warn({}, 'permission denied');
  await flushed();
  assert.equal(lines.length, 0);
  assert.equal(log.suppressedCount, 5);
});

test('the authenticator counts every refused call and logs at most auth_refusal_log_per_second lines', async () => {
  const { logger, lines } = collectingLogger();
  const refused: string[] = [];
  const authenticator = new TokenAuthenticator([], logger, (reason) => refused.push(reason), 2, () => 5_000);
  const metadata = new Metadata();
  metadata.set('authorization', 'Bearer not-a-known-token');
  for (let i = 0; i < 6; i++) {
    assert.throws(
      () => authenticator.admit({ name: 'Read', role: 'read' }, metadata, () => 'ipv4:127.0.0.1:1'),
      (error: unknown) => isWalError(error) && error.code === 'WAL_UNAUTHENTICATED',
    );
  }
  await flushed();
  assert.equal(authenticator.authenticationFailures, 6);
  assert.equal(refused.length, 6);
  assert.equal(lines.filter((line) => line['msg'] === 'authentication failed').length, 2);
  assert.equal(lines[0]!['peer'], 'ipv4:127.0.0.1:1');
});

test('the authenticator reads the peer address of a refused call only', () => {
  const { logger } = collectingLogger();
  const authenticator = new TokenAuthenticator([{ tokenSha256: accessTokenDigest('good'), role: 'write', name: 'ingest' }], logger, () => {}, 10);
  const metadata = new Metadata();
  metadata.set('authorization', bearerValueOf('good'));
  let peerReads = 0;
  const peerOf = (): string => {
    peerReads += 1;
    return 'ipv4:127.0.0.1:1';
  };
  assert.deepEqual(authenticator.admit({ name: 'Append', role: 'write' }, metadata, peerOf), { role: 'write', name: 'ingest' });
  assert.equal(peerReads, 0);
  assert.throws(() => authenticator.admit({ name: 'Compact', role: 'admin' }, metadata, peerOf), (error: unknown) => isWalError(error) && error.code === 'WAL_PERMISSION_DENIED');
  assert.equal(peerReads, 1);
});
