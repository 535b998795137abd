/**
 * MemoryStorage (src/storage/memory-storage.ts): every method of the storage port, the errors it
 * gives with the codes NodeStorage gives, sparse preallocation, the cap, locks.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { StorageError } from '../../../src/storage/storage.js';

const MiB = 1024 * 1024;

function code(expected: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof StorageError && error.code === expected;
}

function withFile(storage: MemoryStorage, path: string, bytes: string): void {
  const file = storage.open(path, 'create-new');
  file.writev([Buffer.from(bytes)], 0);
  file.close();
}

describe('MemoryStorage files', () => {
  test('create-new, write, read back, size; create-new of an existing file is EEXIST, open of a missing one ENOENT', async () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const file = storage.open('/d/a', 'create-new');
    assert.equal(file.path, '/d/a');
    assert.equal(file.writev([Buffer.from('hello '), Buffer.from('world')], 0), 11);
    assert.equal(file.size(), 11);
    assert.equal(storage.size('/d/a'), 11);
    const buffer = Buffer.alloc(32, 0xff);
    assert.equal(file.readSync(buffer, 5, 6), 5);
    assert.equal(buffer.subarray(0, 5).toString(), 'world');
    assert.equal(await file.read(buffer, 32, 0), 11, 'a read past the end is short');
    assert.equal(buffer.subarray(0, 11).toString(), 'hello world');
    assert.equal(file.readSync(buffer, 8, 11), 0, '0 at the end of the file');
    file.close();
    assert.throws(() => storage.open('/d/a', 'create-new'), code('EEXIST'));
    assert.throws(() => storage.open('/d/missing', 'read'), code('ENOENT'));
    assert.throws(() => storage.open('/d/missing', 'read-write'), code('ENOENT'));
    assert.throws(() => storage.open('/nowhere/a', 'create-new'), code('ENOENT'));
    assert.throws(() => storage.open('/d/a/b', 'create-new'), code('ENOTDIR'));
    assert.throws(() => storage.open('/d', 'read'), code('EISDIR'));
    assert.deepEqual(storage.readFile('/d/a'), Buffer.from('hello world'));
  });

  test('a write past the end leaves a hole of zeros; overwrites in place; handles of one file share its bytes', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const writer = storage.open('/d/f', 'create-new');
    writer.writev([Buffer.from('abc')], 10);
    const reader = storage.open('/d/f', 'read');
    assert.deepEqual(storage.readFile('/d/f'), Buffer.concat([Buffer.alloc(10), Buffer.from('abc')]));
    writer.writev([Buffer.from('XY')], 11);
    const buffer = Buffer.alloc(3);
    reader.readSync(buffer, 3, 10);
    assert.equal(buffer.toString(), 'aXY');
    writer.close();
    reader.close();
  });

  test('grows geometrically through many small appends, every byte kept', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const file = storage.open('/d/log', 'create-new');
    const chunk = Buffer.alloc(100);
    let position = 0;
    for (let i = 0; i < 5000; i++) {
      chunk.fill(i % 251);
      position += file.writev([chunk], position);
    }
    assert.equal(file.size(), 500_000);
    const read = Buffer.alloc(100);
    for (const i of [0, 1, 2499, 4999]) {
      file.readSync(read, 100, i * 100);
      assert.ok(read.every((b) => b === i % 251), `chunk ${i}`);
    }
    assert.equal(storage.stats().usedBytes, 500_000);
    file.close();
  });

  test('fillZeros preallocates sparsely: 64 MiB files hold no memory until written, and read as zeros', async () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const before = process.memoryUsage().arrayBuffers;
    const files = [];
    for (let i = 0; i < 10; i++) {
      const file = storage.open(`/d/segment-${i}`, 'create-new');
      await file.fillZeros(0, 64 * MiB);
      files.push(file);
    }
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    assert.ok(grownBytes < 64 * MiB, `10 preallocated 64 MiB files took ${grownBytes} bytes of buffers`);
    assert.equal(storage.stats().usedBytes, 0);
    const file = files[0]!;
    assert.equal(file.size(), 64 * MiB);
    file.writev([Buffer.from('records')], 0);
    assert.equal(storage.stats().usedBytes, 7);
    const tail = Buffer.alloc(16, 0xff);
    assert.equal(file.readSync(tail, 16, 64 * MiB - 16), 16);
    assert.ok(tail.every((b) => b === 0), 'the preallocated end reads as zeros');
    // Zeros over written bytes do overwrite them.
    await file.fillZeros(0, 3);
    const head = Buffer.alloc(7);
    file.readSync(head, 7, 0);
    assert.deepEqual(head, Buffer.from('\0\0\0ords'));
    for (const f of files) f.close();
  });

  test('truncate cuts (the cut bytes read as zeros when extended again) and extends with zeros', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const file = storage.open('/d/f', 'create-new');
    file.writev([Buffer.alloc(100_000, 7)], 0);
    file.truncate(10);
    assert.equal(file.size(), 10);
    assert.equal(storage.stats().usedBytes, 10);
    file.truncate(20);
    const buffer = Buffer.alloc(20);
    file.readSync(buffer, 20, 0);
    assert.deepEqual(buffer, Buffer.concat([Buffer.alloc(10, 7), Buffer.alloc(10)]));
    assert.throws(() => file.truncate(-1), code('EINVAL'));
    // A small cut keeps the buffer: what was cut must read as zeros when a write past it grows the file back.
    file.writev([Buffer.alloc(100, 5)], 0);
    file.truncate(60);
    file.writev([Buffer.from('Z')], 99);
    const regrown = Buffer.alloc(100);
    file.readSync(regrown, 100, 0);
    assert.deepEqual(regrown, Buffer.concat([Buffer.alloc(60, 5), Buffer.alloc(39), Buffer.from('Z')]));
    file.close();
  });

  test('a closed file refuses every call with EBADF; a read-only one refuses writes', async () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    withFile(storage, '/d/f', 'x');
    const readOnly = storage.open('/d/f', 'read');
    assert.throws(() => readOnly.writev([Buffer.from('y')], 0), code('EBADF'));
    assert.throws(() => readOnly.truncate(0), code('EBADF'));
    await assert.rejects(readOnly.fillZeros(0, 10), code('EBADF'));
    readOnly.close();
    const buffer = Buffer.alloc(1);
    assert.throws(() => readOnly.readSync(buffer, 1, 0), code('EBADF'));
    await assert.rejects(readOnly.read(buffer, 1, 0), code('EBADF'));
    assert.throws(() => readOnly.datasync(), code('EBADF'));
    await assert.rejects(readOnly.datasyncAsync(), code('EBADF'));
    assert.throws(() => readOnly.sync(), code('EBADF'));
    assert.throws(() => readOnly.size(), code('EBADF'));
    assert.throws(() => readOnly.close(), code('EBADF'));
    assert.equal(storage.stats().openFiles, 0);
  });

  test('syncs do nothing but are counted', async () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    const file = storage.open('/d/f', 'create-new');
    file.datasync();
    await file.datasyncAsync();
    file.sync();
    storage.syncDir('/d');
    assert.equal(storage.stats().syncCalls, 4);
    assert.throws(() => storage.syncDir('/missing'), code('ENOENT'));
    file.close();
  });
});

describe('MemoryStorage directories', () => {
  test('mkdirp makes parents, is idempotent, and refuses a path through or at a file', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/a/b/c');
    storage.mkdirp('/a/b/c');
    assert.ok(storage.exists('/a') && storage.exists('/a/b') && storage.exists('/a/b/c'));
    assert.deepEqual(storage.list('/a'), ['b']);
    withFile(storage, '/a/f', '');
    assert.throws(() => storage.mkdirp('/a/f'), code('EEXIST'));
    assert.throws(() => storage.mkdirp('/a/f/g'), code('ENOTDIR'));
  });

  test('list names the entries, ENOENT for a missing directory, ENOTDIR for a file', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d/sub');
    withFile(storage, '/d/one', '1');
    withFile(storage, '/d/two', '2');
    assert.deepEqual(storage.list('/d').sort(), ['one', 'sub', 'two']);
    assert.deepEqual(storage.list('/d/sub'), []);
    assert.throws(() => storage.list('/missing'), code('ENOENT'));
    assert.throws(() => storage.list('/d/one'), code('ENOTDIR'));
  });

  test('exists and size: files, directories, missing paths', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d');
    withFile(storage, '/d/f', 'abc');
    assert.equal(storage.exists('/d/f'), true);
    assert.equal(storage.exists('/d'), true);
    assert.equal(storage.exists('/d/g'), false);
    assert.equal(storage.exists('/d/f/g'), false, 'a path through a file does not exist');
    assert.equal(storage.size('/d/f'), 3);
    assert.throws(() => storage.size('/d/g'), code('ENOENT'));
  });

  test('relative paths are resolved against the working directory', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('data');
    withFile(storage, 'data/f', 'x');
    assert.equal(storage.exists(resolve('data', 'f')), true);
    assert.deepEqual(storage.readFile(`${resolve('data')}/f`), Buffer.from('x'));
  });

  test('rename moves atomically and replaces its target; open handles follow the file', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d/sub');
    withFile(storage, '/d/old', 'old');
    withFile(storage, '/d/new', 'new bytes');
    const handle = storage.open('/d/new', 'read');
    storage.rename('/d/new', '/d/old');
    assert.equal(storage.exists('/d/new'), false);
    assert.deepEqual(storage.readFile('/d/old'), Buffer.from('new bytes'));
    storage.rename('/d/old', '/d/sub/moved');
    assert.deepEqual(storage.list('/d'), ['sub']);
    const buffer = Buffer.alloc(3);
    handle.readSync(buffer, 3, 0);
    assert.equal(buffer.toString(), 'new');
    handle.close();
    storage.rename('/d/sub/moved', '/d/sub/moved');
    assert.deepEqual(storage.readFile('/d/sub/moved'), Buffer.from('new bytes'), 'a rename onto itself changes nothing');
  });

  test('rename errors: ENOENT (source, target directory), EISDIR, ENOTDIR, ENOTEMPTY, EINVAL', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d/full/x');
    storage.mkdirp('/d/empty');
    withFile(storage, '/d/f', 'f');
    assert.throws(() => storage.rename('/d/missing', '/d/g'), code('ENOENT'));
    assert.throws(() => storage.rename('/d/f', '/nowhere/g'), code('ENOENT'));
    assert.throws(() => storage.rename('/d/f', '/d/empty'), code('EISDIR'));
    assert.throws(() => storage.rename('/d/empty', '/d/f'), code('ENOTDIR'));
    assert.throws(() => storage.rename('/d/empty', '/d/full'), code('ENOTEMPTY'));
    assert.throws(() => storage.rename('/d/full', '/d/full/x/inside'), code('EINVAL'));
    storage.rename('/d/full', '/d/moved');
    assert.deepEqual(storage.list('/d/moved'), ['x'], 'a directory moves with what it holds');
  });

  test('unlink removes the name; an open handle still reads the file; ENOENT, EISDIR', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/d/sub');
    withFile(storage, '/d/f', 'kept while open');
    const handle = storage.open('/d/f', 'read');
    storage.unlink('/d/f');
    assert.equal(storage.exists('/d/f'), false);
    const buffer = Buffer.alloc(4);
    handle.readSync(buffer, 4, 0);
    assert.equal(buffer.toString(), 'kept');
    assert.equal(storage.stats().usedBytes, 15, 'held while a handle is open');
    handle.close();
    assert.equal(storage.stats().usedBytes, 0, 'given back at the last close');
    assert.throws(() => storage.unlink('/d/f'), code('ENOENT'));
    assert.throws(() => storage.unlink('/d/sub'), code('EISDIR'));
    assert.throws(() => storage.readFile('/d/f'), code('ENOENT'));
    assert.throws(() => storage.readFile('/d/sub'), code('EISDIR'));
  });
});

describe('MemoryStorage locks and cap', () => {
  test('a second lock of a directory is ELOCKED until the first is released; other directories and instances are separate', () => {
    const storage = new MemoryStorage();
    storage.mkdirp('/a');
    storage.mkdirp('/b');
    const lock = storage.lock('/a');
    assert.throws(
      () => storage.lock('/a/'),
      (error: unknown) => error instanceof StorageError && error.code === 'ELOCKED' && error.holder?.includes('memory storage') === true,
    );
    storage.lock('/b').release();
    const other = new MemoryStorage();
    other.mkdirp('/a');
    other.lock('/a').release();
    lock.release();
    lock.release();
    storage.lock('/a').release();
    assert.throws(() => storage.lock('/missing'), code('ENOENT'));
  });

  test('past maxBytes a write stores what fits and fails with ENOSPC; freeBytes says what is left; space freed is usable again', () => {
    const storage = new MemoryStorage({ maxBytes: 1000 });
    storage.mkdirp('/d');
    assert.equal(storage.freeBytes('/d'), 1000);
    const file = storage.open('/d/f', 'create-new');
    file.writev([Buffer.alloc(600, 1)], 0);
    assert.equal(storage.freeBytes('/d'), 400);
    assert.throws(() => file.writev([Buffer.alloc(300, 2), Buffer.alloc(300, 3)], 600), code('ENOSPC'));
    assert.equal(file.size(), 1000, 'the first buffer and what fit of the second were written');
    assert.equal(storage.freeBytes('/d'), 0);
    file.writev([Buffer.alloc(10, 9)], 0);
    assert.equal(storage.stats().usedBytes, 1000, 'overwrites take no more');
    file.truncate(100);
    assert.equal(storage.freeBytes('/d'), 900);
    file.close();
    storage.unlink('/d/f');
    assert.equal(storage.freeBytes('/d'), 1000);
    assert.equal(new MemoryStorage().freeBytes('/d'), undefined, 'no cap: unknown');
    assert.throws(() => new MemoryStorage({ maxBytes: -1 }), RangeError);
  });
});
