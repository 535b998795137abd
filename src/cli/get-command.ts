import type { Command } from 'commander';
import type { GetResponse } from '../gen/wald/v1/state.js';
import { printJson, printText } from './output.js';
import { bytesAsText, isoTime, jsonBytes, jsonInteger } from './record-view.js';
import { formatFields } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

function printEntry(key: Buffer, response: GetResponse, json: boolean): void {
  if (json) {
    printJson({
      ...jsonBytes('key', key),
      ...jsonBytes('value', response.value),
      offset: jsonInteger(response.offset),
      timestamp: jsonInteger(response.timestamp),
      time: isoTime(response.timestamp),
    });
    return;
  }
  printText(
    formatFields([
      ['value', bytesAsText(response.value)],
      ['offset', response.offset.toString()],
      ['timestamp', isoTime(response.timestamp)],
    ]),
  );
}

/** Registers `wald get`: a key's current value in the key-value view. */
export function registerGetCommand(program: Command): void {
  const command = program
    .command('get')
    .summary("show a key's current value")
    .description(
      "Show a key's current value in the key-value view: the value, offset and timestamp of its latest PUT. " +
        'The server answers once its view holds every record durable when the call arrived, so an acknowledged ' +
        'append is seen. A missing key exits 1 with NOT_FOUND (WAL_KEY_NOT_FOUND).',
    )
    .argument('<key>', 'the key (UTF-8)');
  addUnaryClientOptions(command).action(async (keyText: string, options: UnaryCommandOptions) => {
    const key = Buffer.from(keyText, 'utf8');
    const response = await withClient(options, (client) =>
      callUnary<GetResponse>((metadata, callback) => client.get({ key }, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printEntry(key, response, options.json);
  });
}
