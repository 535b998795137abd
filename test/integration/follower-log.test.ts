/**
 * The leader's log lines for its followers, read from a real `wald serve` leader's JSON log while a
 * real `wald serve --follow` child connects and goes: one `follower connected` line (id, peer,
 * from offset) however many streams the follower opens, and one `follower disconnected` line (id,
 * why, how long it was connected) once its last stream closed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import { parseLog, type LogLine } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { startServe, waitForNextOffset, type ServeChild } from '../support/wald-serve-child.js';

/** The leader's log lines with message `msg` so far. */
function linesOf(leader: ServeChild, msg: string): LogLine[] {
  return leader.output.lines.map((line) => parseLog(line)).filter((line): line is LogLine => line?.msg === msg);
}

describe('follower log lines of a wald serve leader', { timeout: 60_000 }, () => {
  test('a follower connecting and going away gives one info line each on the leader: id, peer and from offset; id, why and how long', async () => {
    const temp = makeTempDir('wald-follower-log-');
    let leader: ServeChild | undefined;
    let follower: ServeChild | undefined;
    try {
      leader = await startServe(join(temp.dir, 'leader'));
      const client = new WalClient(leader.address);
      try {
        await client.append([{ value: Buffer.from('a') }, { value: Buffer.from('b') }, { value: Buffer.from('c') }]);
      } finally {
        await client.close();
      }
      follower = await startServe(join(temp.dir, 'follower'), ['--follow', leader.address, '--follower-id', 'f1']);
      const connected = await leader.waitForLog((line) => line.msg === 'follower connected');
      assert.equal(connected['level'], 30, 'info');
      assert.equal(connected['followerId'], 'f1');
      assert.match(String(connected['peer']), /127\.0\.0\.1:\d+/);
      assert.equal(connected['fromOffset'], 0, 'a new follower asks from offset 0');
      await waitForNextOffset(follower.address, 3);
      const run = await follower.stop();
      follower = undefined;
      assert.equal(run.code, 0, run.stderr);
      const disconnected = await leader.waitForLog((line) => line.msg === 'follower disconnected');
      assert.equal(disconnected['level'], 30, 'info');
      assert.equal(disconnected['followerId'], 'f1');
      assert.equal(typeof disconnected['why'], 'string');
      assert.notEqual(disconnected['why'], '');
      assert.equal(typeof disconnected['connectedMs'], 'number');
      assert.ok((disconnected['connectedMs'] as number) >= 0);
      // The follower held a ReportFollower stream and a frames tail: still one line each.
      assert.equal(linesOf(leader, 'follower connected').length, 1, 'one connect line');
      assert.equal(linesOf(leader, 'follower disconnected').length, 1, 'one disconnect line');
    } finally {
      await follower?.stop();
      const run = await leader?.stop();
      temp.remove();
      if (run !== undefined) assert.equal(run.code, 0, run.stderr);
    }
  });
});
