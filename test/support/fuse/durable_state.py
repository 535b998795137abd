"""What a power cut leaves behind: the durable half of unsynced_fs.py's model, and the cut.

A `DurableState` holds, per node (the daemon's own file or directory id), the bytes a file had at
its last fsync and the entries a directory had at its last directory fsync. `restore` rewrites a
backing directory to that state, optionally keeping some unsynced pages (see `mix_pages`). The
model itself is described in unsynced_fs.py's header.
"""

import os
import random
import shutil
import stat

PAGE_BYTES = 4096


class DurableState:
    """Durable bytes per file node, durable entries (name -> node) per directory node."""

    def __init__(self):
        self.next_id = 0
        self.node_by_ino = {}
        self.durable_bytes = {}
        self.durable_entries = {}
        self.root = None

    def node_of(self, st):
        """The node of a backing inode, allocated (with nothing durable) on first sight."""
        node = self.node_by_ino.get(st.st_ino)
        if node is None:
            node = self.next_id
            self.next_id += 1
            self.node_by_ino[st.st_ino] = node
            if stat.S_ISDIR(st.st_mode):
                self.durable_entries[node] = {}
            else:
                self.durable_bytes[node] = None
        return node

    def forget_ino(self, st):
        """The backing inode lost its last name: its number may be reused for another file."""
        if stat.S_ISDIR(st.st_mode) or st.st_nlink <= 1:
            self.node_by_ino.pop(st.st_ino, None)

    def reachable(self):
        """Nodes a cut would bring back: the durable tree from the root."""
        seen = set()
        pending = [self.root]
        while pending:
            node = pending.pop()
            if node in seen:
                continue
            seen.add(node)
            pending.extend(self.durable_entries.get(node, {}).values())
        return seen

    def collect_garbage(self, open_nodes):
        """Drops the durable state of nodes that are neither durably named nor live."""
        keep = self.reachable() | set(self.node_by_ino.values()) | set(open_nodes)
        for table in (self.durable_bytes, self.durable_entries):
            for node in [n for n in table if n not in keep]:
                del table[node]


def scan(backing):
    """A state in which everything now in `backing` is durable."""
    state = DurableState()
    state.root = state.node_of(os.lstat(backing))
    pending = [(backing, state.root)]
    while pending:
        path, node = pending.pop()
        entries = {}
        for name in os.listdir(path):
            child_path = os.path.join(path, name)
            st = os.lstat(child_path)
            child = state.node_of(st)
            entries[name] = child
            if stat.S_ISDIR(st.st_mode):
                pending.append((child_path, child))
            else:
                state.durable_bytes[child] = read_path(child_path)
        state.durable_entries[node] = entries
    return state


def read_whole(fd):
    size = os.fstat(fd).st_size
    chunks = []
    at = 0
    while at < size:
        chunk = os.pread(fd, size - at, at)
        if not chunk:
            break
        chunks.append(chunk)
        at += len(chunk)
    return b''.join(chunks)


def read_path(path):
    with open(path, 'rb') as f:
        return f.read()


def mix_pages(live, durable, rng):
    """A file's bytes after the cut, and how many differing pages came from each side.

    Without `rng` every page and the length are the durable ones; with it each page whose live and
    durable bytes differ comes from either side, and the length lies between the two.
    """
    span = max(len(live), len(durable))
    live_padded = live.ljust(span, b'\0')
    durable_padded = durable.ljust(span, b'\0')
    pages = []
    kept = {'live': 0, 'durable': 0}
    for start in range(0, span, PAGE_BYTES):
        live_page = live_padded[start:start + PAGE_BYTES]
        durable_page = durable_padded[start:start + PAGE_BYTES]
        if live_page == durable_page:
            pages.append(durable_page)
            continue
        side = 'live' if rng is not None and rng.random() < 0.5 else 'durable'
        pages.append(live_page if side == 'live' else durable_page)
        kept[side] += 1
    low, high = sorted((len(live), len(durable)))
    length = rng.randint(low, high) if rng is not None else len(durable)
    return b''.join(pages)[:length], kept


def restore(backing, state, live, seed):
    """The power cut: rewrites `backing` to `state`; `live` maps file nodes to their live bytes.

    With a `seed`, unsynced pages are kept at random (`mix_pages`). Returns the cut's report.
    """
    rng = random.Random(seed) if seed is not None else None
    report = {'files': 0, 'livePages': 0, 'durablePages': 0}
    tree = durable_tree(state, state.root, live, rng, report)
    for name in os.listdir(backing):
        remove(os.path.join(backing, name))
    write_tree(backing, tree)
    return report


def durable_tree(state, node, live, rng, report):
    """Nested dicts (directories) and bytes (files) of what survives, in name order."""
    tree = {}
    for name, child in sorted(state.durable_entries[node].items()):
        if child in state.durable_entries:
            tree[name] = durable_tree(state, child, live, rng, report)
            continue
        durable = state.durable_bytes.get(child) or b''
        # A file with no name and no open handle has no page cache left to write back.
        tree[name], kept = mix_pages(live.get(child, durable), durable, rng)
        report['files'] += 1
        report['livePages'] += kept['live']
        report['durablePages'] += kept['durable']
    return tree


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def write_tree(path, tree):
    for name, content in tree.items():
        child = os.path.join(path, name)
        if isinstance(content, dict):
            os.mkdir(child)
            write_tree(child, content)
        else:
            with open(child, 'wb') as f:
                f.write(content)
