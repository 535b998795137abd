#!/usr/bin/python3
"""A FUSE pass-through file system that can simulate a power cut.

Usage: python3 -B unsynced_fs.py BACKING_DIR MOUNTPOINT CONTROL_SOCKET

Needs Debian's python3-fusepy (the `fusepy` module over libfuse2) and /dev/fuse; fuse3 provides
`fusermount3 -u MOUNTPOINT`, which unmounts it (SIGTERM does too). Prints `ready` on stdout once
the mount and the control socket are up. Run it with /usr/bin/python3: a pyenv python3 does not see
Debian's modules.

The model
---------
Every operation is applied to BACKING_DIR at once: that is the page cache, what a live process
reads. Beside it the daemon keeps, in memory, what would survive a power cut:

- for each file, its bytes as of its last fsync or fdatasync (both also commit the size);
- for each directory, its entries (name -> node) as of its last directory fsync (FUSE `fsyncdir`,
  which the kernel sends for fsync(2) on a directory fd, however it was opened).

Nodes are the daemon's own ids, not st_ino, so a file keeps its identity across renames and an
inode number that the backing file system reuses after an unlink is a new node. A new file starts
with no durable bytes and no durable name; a new directory with no durable entries. At mount (and
after every cut) whatever is in BACKING_DIR is durable.

A `cut` rewrites BACKING_DIR to the durable state: starting from the root's durable entries,
every directory gets its durable entries back (files created but never named by a directory fsync
vanish; renames and unlinks since the last directory fsync are undone) and every file gets its
durable bytes. With `keep-pages`, writeback is modelled as having happened partly and in any order:
for every 4096-byte page whose live and durable bytes differ, a seeded coin keeps the live page or
the durable one, and the file's length is drawn between its durable and live lengths (bytes past
both read as zeros). Directory entries are never kept from the live side. Open handles from before
a cut fail with EIO (a dead process has no open files); after a cut the new state is durable.

Not modelled: hard links and symlinks (refused), modes, owners and times (passed through, never
rolled back), O_APPEND (the kernel computes write offsets itself). flock(2) and POSIX locks are
left to the kernel's local emulation: the daemon implements neither.

Control protocol
----------------
A unix stream socket at CONTROL_SOCKET (outside the mount). One command per line; one JSON line
answers each, `{"ok": true, ...}` or `{"ok": false, "error": "..."}`:

    cut                          drop everything not durable; answers `files` (rewritten),
                                 `livePages` (unsynced pages kept: 0) and `durablePages` (lost)
    cut keep-pages SEED          the same, keeping a random part of the unsynced pages
    fail-fsync CODE N [GLOB]     the next N fsync/fdatasync calls (of files whose current name
                                 matches GLOB, default *) fail with CODE (EIO or ENOSPC), making
                                 nothing durable; N = 0 clears it, and so does a cut
    stats                        counters: fsync, fdatasync, fsyncdir, failedFsyncs, writes, cuts,
                                 pendingFsyncFailures

Memory: the durable bytes of every file that is named durably or still live are held in memory,
so this is for tests with small files. The durable state and the cut itself live in
durable_state.py.
"""

import errno
import fnmatch
import json
import os
import socket
import sys
import threading

from durable_state import read_path, read_whole, restore, scan

try:
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:
    sys.stderr.write('unsynced_fs: the fusepy module is missing (apt-get install -y python3-fusepy fuse3)\n')
    sys.exit(3)

FAILABLE_CODES = {'EIO': errno.EIO, 'ENOSPC': errno.ENOSPC}
STAT_KEYS = ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_atime', 'st_mtime', 'st_ctime', 'st_blocks')


class Handle:
    """An open file: its backing fd and node, and whether a cut has killed it."""

    def __init__(self, fd, node):
        self.fd = fd
        self.node = node
        self.is_stale = False


class UnsyncedFs(Operations):
    """The FUSE operations: a pass-through of `backing` that records what was synced."""

    # Operations on an open handle get no path when its file was unlinked (hard_remove).
    flag_nullpath_ok = 1
    use_ns = True

    def __init__(self, backing):
        self.backing = os.path.realpath(backing)
        self.mutex = threading.Lock()
        self.handles = {}
        self.fsync_failures = {'left': 0, 'code': errno.EIO, 'glob': '*'}
        self.counters = {'fsync': 0, 'fdatasync': 0, 'fsyncdir': 0, 'failedFsyncs': 0, 'writes': 0, 'cuts': 0}
        self.state = scan(self.backing)

    # -- durable state ---------------------------------------------------------------------------

    def live_entries(self, path):
        entries = {}
        for name in os.listdir(path):
            entries[name] = self.state.node_of(os.lstat(os.path.join(path, name)))
        return entries

    def live_bytes(self):
        """The live content of every file node that can still be read: by name, else by handle."""
        found = {}
        for handle in self.handles.values():
            if not handle.is_stale:
                found[handle.node] = read_whole(handle.fd)
        for directory, _, names in os.walk(self.backing):
            for name in names:
                path = os.path.join(directory, name)
                found[self.state.node_of(os.lstat(path))] = read_path(path)
        return found

    # -- the power cut ---------------------------------------------------------------------------

    def cut(self, seed):
        """The power cut (see the header comment); open handles die with it."""
        report = restore(self.backing, self.state, self.live_bytes(), seed)
        for handle in self.handles.values():
            handle.is_stale = True
        self.state = scan(self.backing)
        self.fsync_failures['left'] = 0
        self.counters['cuts'] += 1
        return report

    # -- helpers ---------------------------------------------------------------------------------

    def full(self, path):
        return os.path.join(self.backing, path.lstrip('/'))

    def handle(self, fh):
        handle = self.handles.get(fh)
        if handle is None or handle.is_stale:
            raise FuseOSError(errno.EIO)
        return handle

    def open_nodes(self):
        return [h.node for h in self.handles.values() if not h.is_stale]

    def add_handle(self, fd):
        self.handles[fd] = Handle(fd, self.state.node_of(os.fstat(fd)))
        return fd

    def take_fsync_failure(self, path):
        failures = self.fsync_failures
        name = os.path.basename(path) if path is not None else ''
        if failures['left'] <= 0 or not fnmatch.fnmatch(name, failures['glob']):
            return None
        failures['left'] -= 1
        self.counters['failedFsyncs'] += 1
        return failures['code']

    # -- FUSE operations -------------------------------------------------------------------------

    def init(self, path):
        # The kernel sent FUSE_INIT: the mount is usable.
        sys.stdout.write('ready\n')
        sys.stdout.flush()

    def getattr(self, path, fh=None):
        with self.mutex:
            st = os.fstat(self.handle(fh).fd) if fh is not None else os.lstat(self.full(path))
        return {key: getattr(st, key + '_ns' if key.endswith('time') else key) for key in STAT_KEYS}

    def readdir(self, path, fh):
        with self.mutex:
            return ['.', '..'] + os.listdir(self.full(path))

    def opendir(self, path):
        return 0

    def releasedir(self, path, fh):
        return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.counters['fsyncdir'] += 1
            full = self.full(path)
            node = self.state.node_of(os.lstat(full))
            self.state.durable_entries[node] = self.live_entries(full)
            self.state.collect_garbage(self.open_nodes())
        return 0

    def mkdir(self, path, mode):
        with self.mutex:
            os.mkdir(self.full(path), mode)

    def rmdir(self, path):
        with self.mutex:
            full = self.full(path)
            st = os.lstat(full)
            os.rmdir(full)
            self.state.forget_ino(st)

    def create(self, path, mode, fi=None):
        with self.mutex:
            return self.add_handle(os.open(self.full(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode))

    def open(self, path, flags):
        with self.mutex:
            # Read-write whatever was asked, so that fsync can read what it makes durable; the
            # kernel enforces the access mode. No O_APPEND: the kernel passes the offset to write.
            return self.add_handle(os.open(self.full(path), os.O_RDWR))

    def read(self, path, size, offset, fh):
        with self.mutex:
            return os.pread(self.handle(fh).fd, size, offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            self.counters['writes'] += 1
            return os.pwrite(self.handle(fh).fd, data, offset)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            if fh is not None:
                os.ftruncate(self.handle(fh).fd, length)
            else:
                os.truncate(self.full(path), length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self.mutex:
            handle = self.handles.pop(fh, None)
            if handle is not None:
                os.close(handle.fd)
            self.state.collect_garbage(self.open_nodes())

    def fsync(self, path, datasync, fh):
        with self.mutex:
            handle = self.handle(fh)
            self.counters['fdatasync' if datasync else 'fsync'] += 1
            failure = self.take_fsync_failure(path)
            if failure is not None:
                raise FuseOSError(failure)
            self.state.durable_bytes[handle.node] = read_whole(handle.fd)
        return 0

    def unlink(self, path):
        with self.mutex:
            full = self.full(path)
            st = os.lstat(full)
            os.unlink(full)
            self.state.forget_ino(st)

    def rename(self, old, new):
        with self.mutex:
            target = self.full(new)
            replaced = os.lstat(target) if os.path.lexists(target) else None
            source = os.lstat(self.full(old))
            os.rename(self.full(old), target)
            if replaced is not None and replaced.st_ino != source.st_ino:
                self.state.forget_ino(replaced)

    def link(self, target, source):
        raise FuseOSError(errno.EPERM)

    def symlink(self, target, source):
        raise FuseOSError(errno.EPERM)

    def chmod(self, path, mode):
        with self.mutex:
            os.chmod(self.full(path), mode)

    def chown(self, path, uid, gid):
        with self.mutex:
            os.chown(self.full(path), uid, gid)

    def utimens(self, path, times=None):
        with self.mutex:
            if times is None:
                os.utime(self.full(path))
            else:
                os.utime(self.full(path), ns=times)

    def statfs(self, path):
        st = os.statvfs(self.full(path))
        keys = ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')
        return {key: getattr(st, key) for key in keys}

    # -- control commands ------------------------------------------------------------------------

    def command(self, line):
        """Runs one control command; returns the JSON-able answer."""
        words = line.split()
        if not words:
            raise ValueError('empty command')
        with self.mutex:
            if words[0] == 'cut' and len(words) == 1:
                return self.cut(None)
            if words[0] == 'cut' and len(words) == 3 and words[1] == 'keep-pages':
                return self.cut(int(words[2]))
            if words[0] == 'fail-fsync' and len(words) in (3, 4) and words[1] in FAILABLE_CODES:
                self.fsync_failures = {'left': int(words[2]), 'code': FAILABLE_CODES[words[1]], 'glob': words[3] if len(words) == 4 else '*'}
                return {}
            if words[0] == 'stats' and len(words) == 1:
                return dict(self.counters, pendingFsyncFailures=self.fsync_failures['left'])
        raise ValueError('unknown command: ' + line)


def serve_control(fs, server):
    """Answers control connections, one JSON line per command line, until the process ends."""
    while True:
        connection, _ = server.accept()
        threading.Thread(target=answer, args=(fs, connection), daemon=True).start()


def answer(fs, connection):
    with connection, connection.makefile('rwb') as stream:
        for raw in stream:
            try:
                reply = dict(fs.command(raw.decode().strip()), ok=True)
            except Exception as error:  # every failure goes back to the caller, never kills the daemon
                reply = {'ok': False, 'error': str(error)}
            stream.write((json.dumps(reply) + '\n').encode())
            stream.flush()


def main():
    if len(sys.argv) != 4:
        sys.stderr.write('usage: unsynced_fs.py BACKING_DIR MOUNTPOINT CONTROL_SOCKET\n')
        sys.exit(2)
    backing, mountpoint, control = sys.argv[1:]
    fs = UnsyncedFs(backing)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control)
    server.listen()
    threading.Thread(target=serve_control, args=(fs, server), daemon=True).start()
    try:
        # direct_io and zero timeouts: the kernel caches no pages, attributes or names, so after a
        # cut rewrote the backing directory behind its back every process sees the new state.
        FUSE(fs, mountpoint, foreground=True, fsname='unsynced_fs', direct_io=True, big_writes=True, hard_remove=True,
             attr_timeout=0, entry_timeout=0, negative_timeout=0)
    finally:
        server.close()
        os.unlink(control)


if __name__ == '__main__':
    main()
