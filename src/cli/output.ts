import { RpcError, formatRpcError } from './rpc-error.js';

/**
 * Where commands print. Results go to stdout (text or JSON); errors go to stderr, as one JSON
 * object `{"error": {...}}` under `--json` so that scripts can parse them too.
 */

/** Prints text to stdout as is. */
export function printText(text: string): void {
  process.stdout.write(text);
}

/** Prints one JSON document on one line. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Prints a failed call to stderr. */
export function printRpcError(error: RpcError, json: boolean): void {
  process.stderr.write(json ? `${JSON.stringify({ error: error.toJSON() })}\n` : `wald: ${formatRpcError(error)}\n`);
}

/** Prints any other failure to stderr. */
export function printFailure(message: string, json: boolean): void {
  process.stderr.write(json ? `${JSON.stringify({ error: { message } })}\n` : `wald: ${message}\n`);
}
