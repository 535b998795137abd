/**
 * The value of a `prepare` record: the writes of a transaction, as one payload. The record's key
 * is the transaction id; the writes take effect in the key-value view at the transaction's
 * `commit` record, all at once, and never if an `abort` comes instead (docs/transactions.md).
 *
 * ```
 *  0         1                   5
 *  +---------+-------------------+---------+---------+-----
 *  | version |   write count     | write 0 | write 1 | ...
 *  +---------+-------------------+---------+---------+-----
 *  write (9 bytes + key + value):
 *  0    1                   5                   9
 *  +----+-------------------+-------------------+-----+-------+
 *  | op |    key length     |   value length    | key | value |
 *  +----+-------------------+-------------------+-----+-------+
 * ```
 *
 * - Integers are little-endian u32. `version` is 1.
 * - `op`: 1 put (sets `key` to `value`), 2 delete (removes `key`; its value length is 0).
 * - Writes apply in order: a key written twice ends as the last write says.
 * - The payload ends exactly after the last write; nothing follows.
 */

/** The version byte this build writes and reads. */
export const TXN_WRITES_VERSION = 1;
/** Bytes before the first write. */
export const TXN_WRITES_HEADER_BYTES = 5;
/** Bytes of a write before its key and value. */
export const TXN_WRITE_HEADER_BYTES = 9;

const OP_PUT = 1;
const OP_DELETE = 2;

/** One write of a transaction. */
export interface TxnWrite {
  readonly op: 'put' | 'delete';
  readonly key: Uint8Array;
  /** The value of a put; empty for a delete. */
  readonly value: Uint8Array;
}

/** A decoded write: key and value are views into the payload (copy what you keep). */
export interface DecodedTxnWrite extends TxnWrite {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** Result of decoding: never throws on bad bytes. */
export type TxnWritesDecodeResult = { readonly ok: true; readonly writes: DecodedTxnWrite[] } | { readonly ok: false; readonly reason: string };

/** Bytes {@link encodeTxnWrites} makes of `writes`. */
export function txnWritesBytes(writes: readonly TxnWrite[]): number {
  let bytes = TXN_WRITES_HEADER_BYTES;
  for (const write of writes) bytes += TXN_WRITE_HEADER_BYTES + write.key.length + write.value.length;
  return bytes;
}

/** Encodes the writes of a transaction. Throws `RangeError` for a delete with a value or an unknown op. */
export function encodeTxnWrites(writes: readonly TxnWrite[]): Buffer {
  const buf = Buffer.allocUnsafe(txnWritesBytes(writes));
  buf[0] = TXN_WRITES_VERSION;
  buf.writeUInt32LE(writes.length, 1);
  let position = TXN_WRITES_HEADER_BYTES;
  writes.forEach((write, i) => {
    if (write.op !== 'put' && write.op !== 'delete') throw new RangeError(`writes[${i}].op must be put or delete, got ${String(write.op)}`);
    if (write.op === 'delete' && write.value.length !== 0) throw new RangeError(`writes[${i}]: a delete has no value`);
    buf[position] = write.op === 'put' ? OP_PUT : OP_DELETE;
    buf.writeUInt32LE(write.key.length, position + 1);
    buf.writeUInt32LE(write.value.length, position + 5);
    position += TXN_WRITE_HEADER_BYTES;
    buf.set(write.key, position);
    position += write.key.length;
    buf.set(write.value, position);
    position += write.value.length;
  });
  return buf;
}

/** Decodes and checks the value of a `prepare` record (see the format above). */
export function decodeTxnWrites(payload: Uint8Array): TxnWritesDecodeResult {
  const writes: DecodedTxnWrite[] = [];
  const reason = scanTxnWrites(payload, (op, key, value) => writes.push({ op, key, value }));
  return reason === undefined ? { ok: true, writes } : { ok: false, reason };
}

/**
 * Checks the value of a `prepare` record without decoding it into objects: the reason it is not a
 * writes payload, or undefined. What the transaction rules check of every PREPARE appended (and
 * the table of every PREPARE applied), so that a transaction's writes are made into objects once,
 * at its COMMIT.
 */
export function checkTxnWrites(payload: Uint8Array): string | undefined {
  return scanTxnWrites(payload, undefined);
}

/**
 * Calls `onWrite` for each write of a payload that {@link checkTxnWrites} accepted, in order, with
 * where its key and value lie in `bytes` (the payload as a `Buffer`): `bytes[keyStart..keyEnd)` and
 * `bytes[keyEnd..valueEnd)`. No object per write: for the loops that run once per write of
 * every transaction (applying a COMMIT, judging a PREPARE).
 */
export function forEachTxnWrite(payload: Uint8Array, onWrite: (op: 'put' | 'delete', bytes: Buffer, keyStart: number, keyEnd: number, valueEnd: number) => void): void {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = buf.readUInt32LE(1);
  let position = TXN_WRITES_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const keyStart = position + TXN_WRITE_HEADER_BYTES;
    const keyEnd = keyStart + buf.readUInt32LE(position + 1);
    const valueEnd = keyEnd + buf.readUInt32LE(position + 5);
    onWrite(buf[position] === OP_PUT ? 'put' : 'delete', buf, keyStart, keyEnd, valueEnd);
    position = valueEnd;
  }
}

/** The number of writes a payload that {@link checkTxnWrites} accepted holds. */
export function txnWriteCount(payload: Uint8Array): number {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).readUInt32LE(1);
}

function scanTxnWrites(payload: Uint8Array, onWrite: ((op: 'put' | 'delete', key: Buffer, value: Buffer) => void) | undefined): string | undefined {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buf.length < TXN_WRITES_HEADER_BYTES) return `${buf.length} bytes, shorter than the ${TXN_WRITES_HEADER_BYTES}-byte header`;
  if (buf[0] !== TXN_WRITES_VERSION) return `unsupported version ${buf[0]}`;
  const count = buf.readUInt32LE(1);
  // Every write takes at least its header: a count beyond that is damage, not a reason to allocate.
  if (count > (buf.length - TXN_WRITES_HEADER_BYTES) / TXN_WRITE_HEADER_BYTES) return `${count} writes cannot fit in ${buf.length} bytes`;
  let position = TXN_WRITES_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (buf.length - position < TXN_WRITE_HEADER_BYTES) return `write ${i} is cut off`;
    const opCode = buf[position]!;
    const keyBytes = buf.readUInt32LE(position + 1);
    const valueBytes = buf.readUInt32LE(position + 5);
    if (opCode !== OP_PUT && opCode !== OP_DELETE) return `write ${i}: unknown op ${opCode}`;
    if (opCode === OP_DELETE && valueBytes !== 0) return `write ${i}: a delete with a value`;
    const keyStart = position + TXN_WRITE_HEADER_BYTES;
    const end = keyStart + keyBytes + valueBytes;
    if (end > buf.length) return `write ${i} is cut off`;
    onWrite?.(opCode === OP_PUT ? 'put' : 'delete', buf.subarray(keyStart, keyStart + keyBytes), buf.subarray(keyStart + keyBytes, end));
    position = end;
  }
  if (position !== buf.length) return `${buf.length - position} bytes after the last write`;
  return undefined;
}
