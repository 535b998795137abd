import { InvalidArgumentError, type Command } from 'commander';
import { TxnWriteOp, type AbortResponse, type CommitResponse, type InDoubtTransaction, type ListTransactionsResponse, type PrepareResponse, type TxnWrite } from '../gen/wald/v1/transaction.js';
import type { WalServiceClient } from '../gen/wald/v1/wal_service.js';
import { printJson, printText } from './output.js';
import { bytesAsText, isoTime, jsonBytes, jsonInteger } from './record-view.js';
import { formatFields, formatTable } from './table.js';
import { addUnaryClientOptions, callUnary, deadlineOptions, withClient, type UnaryCommandOptions } from './wal-client.js';

interface TxnAppendOptions extends UnaryCommandOptions {
  readonly sync: boolean;
}

interface AbortOptions extends TxnAppendOptions {
  readonly reason: string;
}

/** Transactions a `wald txn list` page asks for; every page is listed. */
const LIST_PAGE_SIZE = 1000;
/** Pages `wald txn list` reads at most (1M transactions). */
const MAX_LIST_PAGES = 1000;

function printAppended(what: string, txnId: Buffer, response: { readonly offset: bigint; readonly timestamp: bigint }, json: boolean): void {
  if (json) {
    printJson({ ...jsonBytes('txn_id', txnId), record: what, offset: jsonInteger(response.offset), timestamp: jsonInteger(response.timestamp), time: isoTime(response.timestamp) });
    return;
  }
  printText(formatFields([['transaction', bytesAsText(txnId)], [what, `offset ${response.offset}`], ['timestamp', isoTime(response.timestamp)]]));
}

async function listAll(client: WalServiceClient, timeoutMs: number): Promise<{ transactions: InDoubtTransaction[]; inDoubtCount: bigint }> {
  const transactions: InDoubtTransaction[] = [];
  let pageToken = '';
  let inDoubtCount = 0n;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const response = await callUnary<ListTransactionsResponse>((metadata, callback) =>
      client.listTransactions({ pageSize: LIST_PAGE_SIZE, pageToken }, metadata, deadlineOptions(timeoutMs), callback),
    );
    transactions.push(...response.transactions);
    inDoubtCount = response.inDoubtCount;
    pageToken = response.nextPageToken;
    if (pageToken === '') break;
  }
  return { transactions, inDoubtCount };
}

/** Registers `wald txn prepare|commit|abort|list`: two-phase transactions over the key-value view. */
export function registerTxnCommand(program: Command): void {
  const txn = program
    .command('txn')
    .summary('prepare, commit, abort and list two-phase transactions')
    .description(
      'Two-phase transactions over the key-value view (docs/transactions.md): prepare records a transaction id with its ' +
        'writes, commit applies them all at once (each key then carries the COMMIT offset), abort discards them. A ' +
        'transaction in a state that forbids the step exits 1 with FAILED_PRECONDITION (WAL_TXN_STATE). Ids are UTF-8.',
    );

  // --put and --delete share one list, so that writes keep the order given on the command line.
  const writes: TxnWrite[] = [];
  const prepare = txn
    .command('prepare')
    .summary('append the PREPARE of a transaction with its writes')
    .description('Append the PREPARE record of a transaction (Prepare). Nothing changes in the view until its commit. Writes apply in the order given.')
    .argument('<txn-id>', 'the transaction id (UTF-8)')
    .option('--put <key=value>', 'a write setting key to value (repeatable)', (value: string) => {
      const equals = value.indexOf('=');
      if (equals < 0) throw new InvalidArgumentError('expected key=value.');
      writes.push({ op: TxnWriteOp.TXN_WRITE_OP_PUT, key: Buffer.from(value.slice(0, equals), 'utf8'), value: Buffer.from(value.slice(equals + 1), 'utf8') });
    })
    .option('--delete <key>', 'a write removing key (repeatable)', (key: string) => {
      writes.push({ op: TxnWriteOp.TXN_WRITE_OP_DELETE, key: Buffer.from(key, 'utf8'), value: Buffer.alloc(0) });
    })
    .option('--sync', 'acknowledge only once the record is synced', false);
  addUnaryClientOptions(prepare).action(async (idText: string, options: TxnAppendOptions) => {
    const txnId = Buffer.from(idText, 'utf8');
    const response = await withClient(options, (client) =>
      callUnary<PrepareResponse>((metadata, callback) => client.prepare({ txnId, writes, sync: options.sync }, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printAppended('prepare', txnId, response, options.json);
  });

  const commit = txn
    .command('commit')
    .summary('append the COMMIT of a prepared transaction')
    .description('Append the COMMIT record of a prepared transaction (Commit): the view applies all its writes at that offset.')
    .argument('<txn-id>', 'the transaction id (UTF-8)')
    .option('--sync', 'acknowledge only once the record is synced', false);
  addUnaryClientOptions(commit).action(async (idText: string, options: TxnAppendOptions) => {
    const txnId = Buffer.from(idText, 'utf8');
    const response = await withClient(options, (client) =>
      callUnary<CommitResponse>((metadata, callback) => client.commit({ txnId, sync: options.sync }, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printAppended('commit', txnId, response, options.json);
  });

  const abort = txn
    .command('abort')
    .summary('append the ABORT of a prepared transaction')
    .description('Append the ABORT record of a prepared transaction (Abort), with a reason: its writes are discarded.')
    .argument('<txn-id>', 'the transaction id (UTF-8)')
    .option('--reason <text>', 'why (stored in the ABORT record)', '')
    .option('--sync', 'acknowledge only once the record is synced', false);
  addUnaryClientOptions(abort).action(async (idText: string, options: AbortOptions) => {
    const txnId = Buffer.from(idText, 'utf8');
    const response = await withClient(options, (client) =>
      callUnary<AbortResponse>((metadata, callback) => client.abort({ txnId, reason: options.reason, sync: options.sync }, metadata, deadlineOptions(options.timeoutMs), callback)),
    );
    printAppended('abort', txnId, response, options.json);
  });

  const list = txn
    .command('list')
    .summary('list the in-doubt transactions')
    .description('List the in-doubt transactions (prepared, neither committed nor aborted), oldest PREPARE first, every page of ListTransactions.')
    .option('--in-doubt', 'only in-doubt transactions (what the server lists; the default)', true);
  addUnaryClientOptions(list).action(async (options: UnaryCommandOptions) => {
    const { transactions, inDoubtCount } = await withClient(options, (client) => listAll(client, options.timeoutMs));
    if (options.json) {
      printJson({
        in_doubt_count: jsonInteger(inDoubtCount),
        transactions: transactions.map((t) => ({
          ...jsonBytes('txn_id', t.txnId),
          prepare_offset: jsonInteger(t.prepareOffset),
          prepare_time: isoTime(t.prepareTimestamp),
          age_ms: jsonInteger(t.ageMs),
          write_count: t.writeCount,
        })),
      });
      return;
    }
    const rows = transactions.map((t) => [bytesAsText(t.txnId), t.prepareOffset.toString(), isoTime(t.prepareTimestamp), `${t.ageMs} ms`, String(t.writeCount)]);
    printText(`${formatTable(['TXN', 'PREPARE OFFSET', 'PREPARED', 'AGE', 'WRITES'], rows)}(${transactions.length} in doubt)\n`);
  });
}
