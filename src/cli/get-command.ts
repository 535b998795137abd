import type { Command } from 'commander';
import type { StateAtResponse } from '../gen/wald/v1/point_in_time.js';
import type { GetResponse } from '../gen/wald/v1/state.js';
import type { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import { CommandFailure } from './exit-codes.js';
import { addPointInTimeOptions, hasPointInTime, stateAtPoint, type PointInTimeCommandOptions } from './point-in-time-options.js';
import { printJson, printText } from './output.js';
import { bytesAsText, isoTime, jsonBytes, jsonInteger } from './record-view.js';
import { formatFields } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** The state of a key as `--at` found it: the entry, and the offset the state was as of. */
interface EntryAt {
  readonly entry: GetResponse;
  readonly stateOffset: bigint | undefined;
}

function printEntry(key: Buffer, { entry, stateOffset }: EntryAt, json: boolean): void {
  if (json) {
    printJson({
      ...jsonBytes('key', key),
      ...jsonBytes('value', entry.value),
      offset: jsonInteger(entry.offset),
      timestamp: jsonInteger(entry.timestamp),
      time: isoTime(entry.timestamp),
      ...(stateOffset === undefined ? {} : { state_offset: jsonInteger(stateOffset) }),
    });
    return;
  }
  printText(
    formatFields([
      ['value', bytesAsText(entry.value)],
      ['offset', entry.offset.toString()],
      ['timestamp', isoTime(entry.timestamp)],
      ...(stateOffset === undefined ? [] : [['state as of offset', stateOffset.toString()] as [string, string]]),
    ]),
  );
}

/** The key's state at the point of `options` (StateAt); a key the state does not hold exits 1 as Get's NOT_FOUND does. */
async function entryAt(client: WalServiceClient, key: Buffer, options: GetCommandOptions): Promise<EntryAt> {
  const response = await callUnary<StateAtResponse>((metadata, callback) =>
    client.stateAt({ at: stateAtPoint(options), keys: [key], list: undefined, createSnapshot: false, compress: false }, metadata, deadlineOptions(options.timeoutMs), callback),
  );
  const lookup = response.lookups[0];
  if (lookup === undefined || !lookup.found) {
    throw new CommandFailure(`NOT_FOUND (WAL_KEY_NOT_FOUND): no key ${bytesAsText(key)} in the state as of offset ${response.nextOffset}`);
  }
  return { entry: { value: lookup.value, offset: lookup.offset, timestamp: lookup.timestamp }, stateOffset: response.nextOffset };
}

interface GetCommandOptions extends UnaryCommandOptions, PointInTimeCommandOptions {}

/** Registers `wald get`: a key's current value in the key-value view. */
export function registerGetCommand(program: Command): void {
  const command = program
    .command('get')
    .summary("show a key's current value")
    .description(
      "Show a key's current value in the key-value view: the value, offset and timestamp of its latest PUT. " +
        'The server answers once its view holds every record durable when the call arrived, so an acknowledged ' +
        'append is seen. A missing key exits 1 with NOT_FOUND (WAL_KEY_NOT_FOUND). With --at or --at-offset, the key as it ' +
        'was then (StateAt: the server rebuilds that state from a snapshot and the log, docs/point-in-time.md).',
    )
    .argument('<key>', 'the key (UTF-8)');
  addPointInTimeOptions(command, 'the key');
  addUnaryClientOptions(command).action(async (keyText: string, options: GetCommandOptions) => {
    const key = Buffer.from(keyText, 'utf8');
    const found = await withClient(options, async (client) => {
      if (hasPointInTime(options)) return entryAt(client, key, options);
      const entry = await callUnary<GetResponse>((metadata, callback) => client.get({ key }, metadata, deadlineOptions(options.timeoutMs), callback));
      return { entry, stateOffset: undefined };
    });
    printEntry(key, found, options.json);
  });
}
