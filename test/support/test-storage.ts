/**
 * The storage the engine's and server's test files run on: disk (the default) or memory, chosen
 * by `WALD_TEST_STORAGE=memory`. test/integration/memory-storage-suites.test.ts runs a chosen set
 * of files once more with it set, inside the normal `npm test`, so that the same assertions hold
 * on `MemoryStorage`.
 */
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';

/** The environment variable that chooses the storage of the test files that read it. */
export const TEST_STORAGE_ENV = 'WALD_TEST_STORAGE';

/** The storage chosen for this test process: `memory` when `WALD_TEST_STORAGE=memory`, else `disk`. */
export function testStorageKind(): 'disk' | 'memory' {
  const chosen = process.env[TEST_STORAGE_ENV];
  if (chosen === undefined || chosen === '' || chosen === 'disk') return 'disk';
  if (chosen === 'memory') return 'memory';
  throw new Error(`${TEST_STORAGE_ENV} must be disk or memory, got ${chosen}`);
}

/**
 * A storage for one test: a new `MemoryStorage` under memory (reopen the log with the same one:
 * it is the test's whole disk), undefined (the engine's default, the disk) otherwise.
 */
export function testStorage(): Storage | undefined {
  return testStorageKind() === 'memory' ? new MemoryStorage() : undefined;
}

const storagesByDir = new Map<string, Storage>();

/**
 * The storage of data directory `dir` for tests that stop a server and start another on the same
 * directory: under memory, the same `MemoryStorage` every time it is asked for `dir` in this
 * process (it is that directory's disk); undefined (the disk) otherwise.
 */
export function testStorageFor(dir: string): Storage | undefined {
  if (testStorageKind() === 'disk') return undefined;
  let storage = storagesByDir.get(dir);
  if (storage === undefined) {
    storage = new MemoryStorage();
    storagesByDir.set(dir, storage);
  }
  return storage;
}
