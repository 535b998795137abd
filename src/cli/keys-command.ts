import { InvalidArgumentError, type Command } from 'commander';
import type { KeyEntry, ListKeysResponse } from '../gen/wald/v1/state.js';
import type { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import { parsePositiveInteger } from './arg-parsers.js';
import { printJson, printText } from './output.js';
import { bytesAsText, isoTime, jsonBytes, jsonInteger } from './record-view.js';
import { formatTable } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

/** Default `--limit` of `wald keys`. */
export const DEFAULT_KEYS_LIMIT = 1000;
/** Largest `--limit`: what one run prints at most (go on with `--page-token`). */
export const MAX_KEYS_LIMIT = 100_000;
/** Keys asked for per ListKeys call: the server's largest page. */
const PAGE_SIZE = 1000;

interface KeysCommandOptions extends UnaryCommandOptions {
  readonly prefix?: string;
  readonly limit: number;
  readonly pageToken?: string;
}

function parseLimit(value: string): number {
  const limit = parsePositiveInteger(value);
  if (limit > MAX_KEYS_LIMIT) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_KEYS_LIMIT}.`);
  return limit;
}

/** Pages through ListKeys until the listing ends or `limit` keys are in; returns them and the token that goes on. */
async function listKeys(client: WalServiceClient, options: KeysCommandOptions): Promise<{ keys: KeyEntry[]; nextPageToken: string }> {
  const prefix = Buffer.from(options.prefix ?? '', 'utf8');
  const keys: KeyEntry[] = [];
  let pageToken = options.pageToken ?? '';
  // Each call returns at least one key or ends the listing, so this ends within `limit` calls.
  for (let calls = 0; calls < options.limit; calls++) {
    const pageSize = Math.min(PAGE_SIZE, options.limit - keys.length);
    const page = await callUnary<ListKeysResponse>((metadata, callback) =>
      client.listKeys({ prefix, pageSize, pageToken }, metadata, deadlineOptions(options.timeoutMs), callback),
    );
    keys.push(...page.keys);
    pageToken = page.nextPageToken;
    if (pageToken === '' || keys.length >= options.limit) break;
  }
  return { keys, nextPageToken: pageToken };
}

function printKeys(keys: readonly KeyEntry[], nextPageToken: string, json: boolean): void {
  if (json) {
    printJson({
      keys: keys.map((entry) => ({
        ...jsonBytes('key', entry.key),
        offset: jsonInteger(entry.offset),
        timestamp: jsonInteger(entry.timestamp),
        time: isoTime(entry.timestamp),
        value_size_bytes: jsonInteger(entry.valueSizeBytes),
      })),
      next_page_token: nextPageToken,
    });
    return;
  }
  const rows = keys.map((entry) => [bytesAsText(entry.key), entry.offset.toString(), isoTime(entry.timestamp), entry.valueSizeBytes.toString()]);
  const table = keys.length === 0 ? '' : formatTable(['KEY', 'OFFSET', 'TIMESTAMP', 'VALUE_BYTES'], rows);
  const more = nextPageToken === '' ? '' : `; more with --page-token ${nextPageToken}`;
  printText(`${table}(${keys.length} key${keys.length === 1 ? '' : 's'}${more})\n`);
}

/** Registers `wald keys`: the keys of the key-value view, in byte order. */
export function registerKeysCommand(program: Command): void {
  const command = program
    .command('keys')
    .summary('list the keys of the key-value view')
    .description(
      'List the keys of the key-value view in byte order, with the offset, timestamp and value size of each ' +
        'latest PUT: every key, or those starting with --prefix, up to --limit (pages of ListKeys are fetched ' +
        'until then). When more keys remain, the text ends with the --page-token that goes on (JSON: next_page_token).',
    )
    .option('--prefix <prefix>', 'only keys starting with this (UTF-8)')
    .option('--limit <n>', `most keys to print (1 to ${MAX_KEYS_LIMIT})`, parseLimit, DEFAULT_KEYS_LIMIT)
    .option('--page-token <token>', 'go on after the listing that printed this token (same --prefix)');
  addUnaryClientOptions(command).action(async (options: KeysCommandOptions) => {
    const { keys, nextPageToken } = await withClient(options, (client) => listKeys(client, options));
    printKeys(keys, nextPageToken, options.json);
  });
}
