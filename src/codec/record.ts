/**
 * The record vocabulary shared by every layer: what a record is, on disk, in the engine and on the
 * wire. It lives in codec/, the bottom layer, so that the frame codec, the engine and the
 * hand-written wire codecs (src/wire/) all name the same type without importing each other.
 */

/** What a record is. `checkpoint` is written by the server (compaction markers), never by clients. */
export type RecordType = 'put' | 'delete' | 'checkpoint';

/** One record as read back from the log. Byte fields may share memory with a read buffer. */
export interface WalRecord {
  /** Logical position in the log: 0-based, dense. */
  readonly offset: number;
  /** Milliseconds since the epoch, assigned at append, non-decreasing along the log. */
  readonly timestamp: number;
  readonly type: RecordType;
  readonly key: Buffer | undefined;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, Buffer>>;
}
