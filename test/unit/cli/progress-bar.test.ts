/**
 * The progress bar of the offline commands: drawn (cli-progress) only on a terminal and never when
 * the caller is quiet (JSON, or output to the same terminal); it follows totals announced as the
 * work is found.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { progressBar } from '../../../src/cli/progress-bar.js';

/** A stream that records what is written, claiming to be a terminal when `isTTY`. */
function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; written: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY, columns: 100 });
  return { stream, written: () => text };
}

describe('progressBar', () => {
  test('draws the bytes gone through against the total on a terminal, and clears itself when stopped', () => {
    const { stream, written } = fakeStream(true);
    const bar = progressBar('verify', false, stream);
    bar.addTotal(1000);
    bar.addTotal(1000);
    bar.advance(500);
    bar.stop();
    assert.match(written(), /verify \[/);
    assert.match(written(), /\/2000 bytes/);
  });

  test('writes nothing when the stream is not a terminal, or the caller is quiet', () => {
    for (const [isTTY, isQuiet] of [
      [false, false],
      [true, true],
    ] as const) {
      const { stream, written } = fakeStream(isTTY);
      const bar = progressBar('dump', isQuiet, stream);
      bar.addTotal(1000);
      bar.advance(1000);
      bar.stop();
      assert.equal(written(), '', `isTTY ${isTTY}, isQuiet ${isQuiet}`);
    }
  });
});
