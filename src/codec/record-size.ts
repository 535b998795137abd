/**
 * The size of a record, as every `maxBytes` limit of a read counts it: the engine's `read` and
 * tail batches, and through them Read's and TailWal's `max_bytes`. One measure, so that what the
 * engine returns within a limit is within the same limit for the server, which re-counts nothing.
 */
import type { WalRecord } from './record.js';

/**
 * Bytes allowed per record for the fields around its key and value: at least what any encoding of
 * wald gives them. The log frame spends 12 (type, flags, header count, key and value lengths); a
 * protobuf `Record` inside a response spends at most 38 (its own tag and length, 1 + 5; the tags and
 * lengths of key and value, 2 x (1 + 5); the type, 2; offset and timestamp, 2 x (1 + 8) for values
 * up to 2^53). Rounded up.
 */
export const RECORD_ALLOWANCE_BYTES = 48;

/**
 * Bytes allowed per header for the fields around its name and value: the frame spends 6 (name and
 * value lengths), a protobuf map entry at most 16 (entry tag and length, 1 + 5; name tag and length,
 * 1 + 3 for names up to 64 KiB; value tag and length, 1 + 5). Rounded up.
 */
export const HEADER_ALLOWANCE_BYTES = 24;

/**
 * The size of `record` for read limits: its key, value, header names (UTF-8) and header values,
 * plus {@link RECORD_ALLOWANCE_BYTES} and {@link HEADER_ALLOWANCE_BYTES} per header.
 *
 * It is an upper bound of the record's bytes in every form wald keeps or sends it: in its frame on
 * disk and inside an encoded Read or TailWal response. A response whose records sum to at most `n`
 * by this measure therefore encodes to at most `n` plus the few bytes of the response's own fields.
 */
export function recordSizeBytes(record: WalRecord): number {
  let size = RECORD_ALLOWANCE_BYTES + (record.key?.length ?? 0) + record.value.length;
  for (const name in record.headers) {
    size += HEADER_ALLOWANCE_BYTES + Buffer.byteLength(name, 'utf8') + record.headers[name]!.length;
  }
  return size;
}
