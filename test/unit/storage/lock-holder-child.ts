/**
 * The child process of node-storage.test.ts: takes the directory lock of `argv[2]` with a real
 * `NodeStorage`, prints `locked`, and holds it until its stdin closes (the parent ends, or kills it).
 *
 * Without its argument (as when a test runner picks up every file under test/) it does nothing.
 */
import { NodeStorage } from '../../../src/storage/node-storage.js';

const dir = process.argv[2];
if (dir !== undefined) {
  const lock = new NodeStorage().lock(dir);
  process.stdout.write('locked\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    lock.release();
    process.exit(0);
  });
}
