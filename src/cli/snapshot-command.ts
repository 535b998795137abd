import { createHash } from 'node:crypto';
import { dirname, resolve as resolvePath } from 'node:path';
import { Option, type Command } from 'commander';
import { parseSnapshotId } from '../codec/snapshot-id.js';
import type {
  CreateSnapshotResponse,
  GetSnapshotResponse,
  ListSnapshotsResponse,
  SnapshotInfo,
  SnapshotKeyResponse,
  VerifySnapshotResponse,
} from '../gen/wald/v1/snapshot.js';
import type { StateAtResponse } from '../gen/wald/v1/point_in_time.js';
import type { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import { NodeStorage } from '../storage/node-storage.js';
import type { StorageFile } from '../storage/storage.js';
import { CommandFailure, UsageError } from './exit-codes.js';
import { printJson, printText } from './output.js';
import { addPointInTimeOptions, hasPointInTime, stateAtPoint, type PointInTimeCommandOptions } from './point-in-time-options.js';
import { jsonInteger } from './record-view.js';
import { toRpcError } from './rpc-error.js';
import { registerOfflineSnapshotCommands } from './snapshot-command-offline.js';
import { formatSnapshotTable, rowOfMessage, snapshotTypeName, type SnapshotRow } from './snapshot-command-view.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';
import { formatFields } from './table.js';

/** Snapshots asked for per ListSnapshots call: the server's largest page. */
const LIST_PAGE_SIZE = 1000;
/** Most ListSnapshots calls of one `wald snapshot list` (a million snapshots): a bound on a server that never ends its listing. */
const MAX_LIST_PAGES = 1000;
/** Bytes of the SHA-256 trailer at the end of a snapshot file that the checksum does not cover. */
const TRAILER_BYTES = 40;

interface CreateOptions extends UnaryCommandOptions, PointInTimeCommandOptions {
  readonly compress: boolean;
  readonly incremental: boolean;
}

/**
 * A full snapshot of the state at the point of `options` (StateAt with `create_snapshot`), as
 * CreateSnapshot would answer for it, with the figures of the replay that built the state.
 */
async function createSnapshotAt(client: WalServiceClient, options: CreateOptions): Promise<{ created: CreateSnapshotResponse; recordsReplayed: bigint }> {
  const response = await callUnary<StateAtResponse>((metadata, callback) =>
    client.stateAt({ at: stateAtPoint(options), keys: [], list: undefined, createSnapshot: true, compress: options.compress }, metadata, deadlineOptions(options.timeoutMs), callback),
  );
  const info = response.createdSnapshot;
  if (info === undefined) throw new CommandFailure('the server answered StateAt without the snapshot it was asked to write');
  const created: CreateSnapshotResponse = {
    snapshotId: info.snapshotId,
    type: info.type,
    walOffset: info.walOffset,
    entryCount: info.entryCount,
    tombstoneCount: info.tombstoneCount,
    sizeBytes: info.sizeBytes,
    compressed: info.compressed,
    path: info.path,
    durationMs: response.durationMs,
    checksum: info.checksum,
    baseSnapshotId: info.baseSnapshotId,
  };
  return { created, recordsReplayed: response.recordsReplayed };
}

interface GetOptions extends UnaryCommandOptions {
  readonly out: string;
}

/** Whether a command-line argument is a snapshot id (else it is a path). */
export function isSnapshotId(text: string): boolean {
  return parseSnapshotId(text) !== undefined;
}

/**
 * Registers `wald snapshot` and its subcommands: `create`, `list`, `key`, `get` and, for an id,
 * `verify` ask the server; `verify PATH` and `restore` work on files, offline
 * (snapshot-command-offline.ts).
 */
export function registerSnapshotCommand(program: Command): void {
  const snapshot = program
    .command('snapshot')
    .summary('create, list, verify, fetch and restore snapshots of the key-value view')
    .description(
      'Snapshots of the key-value view. create, list, key, get, and verify ID ask a running server; ' +
        'verify PATH and restore read snapshot files offline. See docs/cli.md.',
    );

  const create = snapshot
    .command('create')
    .summary('write a snapshot of the key-value view on the server')
    .description(
      'Ask the server to write a snapshot of its key-value view (CreateSnapshot): every key, or with --incremental only ' +
        'the keys put or deleted since the newest snapshot (its base; without one: FAILED_PRECONDITION, ' +
        'WAL_SNAPSHOT_NO_BASE, exit 1). The server keeps serving meanwhile.',
    )
    .option('--compress', 'gzip-compress the entries', false)
    .addOption(new Option('--incremental', 'only the changes since the newest snapshot').default(false).conflicts(['at', 'atOffset']));
  addPointInTimeOptions(create, 'a full snapshot of the state');
  create.addHelpText('after', '\nWith --at or --at-offset the server builds the state as it was then (StateAt, role admin) and writes a full snapshot of it; see docs/point-in-time.md.');
  addUnaryClientOptions(create).action(async (options: CreateOptions) => {
    const { created, recordsReplayed } = await withClient(options, async (client) => {
      if (hasPointInTime(options)) return createSnapshotAt(client, options);
      const made = await callUnary<CreateSnapshotResponse>((metadata, callback) =>
        client.createSnapshot({ compress: options.compress, incremental: options.incremental }, metadata, deadlineOptions(options.timeoutMs), callback),
      );
      return { created: made, recordsReplayed: undefined };
    });
    if (options.json) {
      printJson({
        ...(recordsReplayed === undefined ? {} : { records_replayed: jsonInteger(recordsReplayed) }),
        snapshot_id: created.snapshotId,
        type: snapshotTypeName(created.type),
        wal_offset: jsonInteger(created.walOffset),
        entry_count: jsonInteger(created.entryCount),
        tombstone_count: jsonInteger(created.tombstoneCount),
        size_bytes: jsonInteger(created.sizeBytes),
        compressed: created.compressed,
        path: created.path,
        duration_ms: jsonInteger(created.durationMs),
        checksum: created.checksum,
        base_snapshot_id: created.baseSnapshotId,
      });
      return;
    }
    printText(
      formatFields([
        ['snapshot', created.snapshotId],
        ['type', snapshotTypeName(created.type)],
        ['wal offset', created.walOffset.toString()],
        ['entries', created.entryCount.toString()],
        ['tombstones', created.tombstoneCount.toString()],
        ['size', `${created.sizeBytes} bytes`],
        ['compressed', created.compressed ? 'yes' : 'no'],
        ['base', created.baseSnapshotId === '' ? '-' : created.baseSnapshotId],
        ['path', created.path],
        ['duration', `${created.durationMs} ms`],
        ['checksum', created.checksum],
        ...(recordsReplayed === undefined ? [] : [['records replayed', recordsReplayed.toString()] as [string, string]]),
      ]),
    );
  });

  const list = snapshot
    .command('list')
    .summary("list the server's snapshots")
    .description("List the server's snapshots in id order (by wal offset, then creation time), every page of ListSnapshots.");
  addUnaryClientOptions(list).action(async (options: UnaryCommandOptions) => {
    const snapshots = await withClient(options, (client) => listAll(client, options.timeoutMs));
    const rows = snapshots.map(rowOfMessage);
    if (options.json) {
      printJson({ snapshots: rows });
      return;
    }
    printText(`${formatSnapshotTable(rows)}(${rows.length} snapshot${rows.length === 1 ? '' : 's'})\n`);
  });

  const key = snapshot
    .command('key')
    .summary("write a point snapshot of one key's state on the server")
    .description("Ask the server to record one key's current state as a point snapshot (SnapshotKey). A missing key exits 1 with NOT_FOUND (WAL_KEY_NOT_FOUND).")
    .argument('<key>', 'the key (UTF-8)');
  addUnaryClientOptions(key).action(async (keyText: string, options: UnaryCommandOptions) => {
    const written = await withClient(options, (client) =>
      callUnary<SnapshotKeyResponse>((metadata, callback) =>
        client.snapshotKey({ key: Buffer.from(keyText, 'utf8') }, metadata, deadlineOptions(options.timeoutMs), callback),
      ),
    );
    if (options.json) {
      printJson({
        snapshot_id: written.snapshotId,
        wal_offset: jsonInteger(written.walOffset),
        size_bytes: jsonInteger(written.sizeBytes),
        checksum: written.checksum,
        path: written.path,
      });
      return;
    }
    printText(
      formatFields([
        ['snapshot', written.snapshotId],
        ['wal offset', written.walOffset.toString()],
        ['size', `${written.sizeBytes} bytes`],
        ['path', written.path],
        ['checksum', written.checksum],
      ]),
    );
  });

  const get = snapshot
    .command('get')
    .summary("download a snapshot file from the server")
    .description(
      'Download a snapshot file from the server (GetSnapshot) into --out, checking its SHA-256 against the checksum ' +
        'the server sent: a mismatch exits 1 and leaves no file. An existing --out is refused. The file keeps its own ' +
        'name for restore: an incremental finds its base beside it by id (<id>.snap).',
    )
    .argument('<id>', 'the snapshot id')
    .addOption(new Option('--out <file>', 'where to write the file').makeOptionMandatory());
  addUnaryClientOptions(get).action(async (id: string, options: GetOptions) => {
    if (!isSnapshotId(id)) throw new UsageError(`not a snapshot id: ${id}`);
    const info = await withClient(options, (client) => download(client, id, options.out, options.timeoutMs));
    if (options.json) {
      printJson({ ...rowOfMessage(info), out: options.out });
      return;
    }
    printText(`wrote ${info.sizeBytes} bytes of snapshot ${info.snapshotId} to ${options.out} (checksum ${info.checksum} verified)\n`);
  });

  registerOfflineSnapshotCommands(snapshot, verifyOnServer);
}

/** Every snapshot of the server, through all pages of ListSnapshots. */
async function listAll(client: WalServiceClient, timeoutMs: number): Promise<SnapshotInfo[]> {
  const snapshots: SnapshotInfo[] = [];
  let pageToken = '';
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const response = await callUnary<ListSnapshotsResponse>((metadata, callback) =>
      client.listSnapshots({ pageSize: LIST_PAGE_SIZE, pageToken }, metadata, deadlineOptions(timeoutMs), callback),
    );
    snapshots.push(...response.snapshots);
    pageToken = response.nextPageToken;
    if (pageToken === '') return snapshots;
  }
  throw new CommandFailure(`the listing did not end within ${MAX_LIST_PAGES} pages`);
}

/** Asks the server to verify snapshot `id`: the verdict as printed (rows of the chain when valid). */
async function verifyOnServer(options: UnaryCommandOptions, id: string): Promise<{ valid: boolean; chain: SnapshotRow[]; failedPath: string; reason: string }> {
  const verdict = await withClient(options, (client) =>
    callUnary<VerifySnapshotResponse>((metadata, callback) => client.verifySnapshot({ snapshotId: id }, metadata, deadlineOptions(options.timeoutMs), callback)),
  );
  return { valid: verdict.valid, chain: verdict.chain.map(rowOfMessage), failedPath: verdict.failedPath, reason: verdict.reason };
}

/**
 * Streams snapshot `id` into `out` (a temp file first, renamed once the bytes match the checksum
 * and the size the server announced, and synced). Rejects with an `RpcError` for a failed call and
 * `CommandFailure` for bytes that do not match or a file that cannot be written.
 */
async function download(client: WalServiceClient, id: string, out: string, timeoutMs: number): Promise<SnapshotInfo> {
  const storage = new NodeStorage();
  if (storage.exists(out)) throw new CommandFailure(`${out} exists already; choose another --out`);
  const temp = `${out}.download`;
  let file: StorageFile;
  try {
    file = storage.open(temp, 'create-new');
  } catch (error) {
    throw new CommandFailure(`cannot write ${temp}: ${(error as Error).message}`);
  }
  let isDone = false;
  try {
    const call = client.getSnapshot({ snapshotId: id }, deadlineOptions(timeoutMs));
    let info: SnapshotInfo | undefined;
    const hash = createHash('sha256');
    let position = 0;
    let tail = Buffer.alloc(0);
    try {
      for await (const message of call as AsyncIterable<GetSnapshotResponse>) {
        if (message.content?.$case === 'info') info = message.content.value;
        else if (message.content?.$case === 'chunk' && info !== undefined) {
          const chunk = message.content.value;
          file.writev([chunk], position);
          position += chunk.length;
          // Everything but the last 40 bytes (the trailer) is hashed: hold back the last 40 seen.
          const pending = Buffer.concat([tail, chunk]);
          hash.update(pending.subarray(0, Math.max(0, pending.length - TRAILER_BYTES)));
          tail = pending.subarray(Math.max(0, pending.length - TRAILER_BYTES));
        }
      }
    } catch (error) {
      throw 'code' in (error as object) ? toRpcError(error as Parameters<typeof toRpcError>[0]) : error;
    }
    if (info === undefined) throw new CommandFailure(`the server sent no snapshot info for ${id}`);
    const checksum = hash.digest('hex');
    if (BigInt(position) !== info.sizeBytes || checksum !== info.checksum) {
      throw new CommandFailure(`snapshot ${id}: received ${position} bytes with SHA-256 ${checksum}; the server announced ${info.sizeBytes} bytes with ${info.checksum}`);
    }
    file.datasync();
    file.close();
    storage.rename(temp, out);
    storage.syncDir(dirname(resolvePath(out)));
    isDone = true;
    return info;
  } finally {
    if (!isDone) {
      try {
        file.close();
      } catch {
        // Closed already, or never to be used again.
      }
      try {
        storage.unlink(temp);
      } catch {
        // Nothing to remove.
      }
    }
  }
}
