/**
 * The record vocabulary shared by every layer: what a record is, on disk, in the engine and on the
 * wire. It lives in codec/, the bottom layer, so that the frame codec, the engine and the
 * hand-written wire codecs (src/wire/) all name the same type without importing each other.
 */

/** What the log knows of one record type. */
export interface RecordTypeSpec {
  /** The record's `type` byte in a frame (1..255; 0 is never written). Never changed once released. */
  readonly typeByte: number;
  /** True when the type makes no sense without a key (a tombstone removes a key). */
  readonly isKeyRequired: boolean;
  /**
   * True for markers the server writes itself (compaction checkpoints, flushes): the gRPC service refuses
   * them from clients. The engine takes them from its own callers like any other type.
   */
  readonly isServerOnly: boolean;
}

/**
 * Every record type, by name: the one definition of the vocabulary. The frame codec's byte <-> name
 * tables, the engine's checks of appended types and the wire mapping (`src/wire/wire-record-type.ts`,
 * a total map over these names, so a name without a wire value does not compile) derive from it:
 * a new record type is one entry here plus its wire value.
 */
export const RECORD_TYPES = {
  /** Sets `key` to `value` in the key-value view; without a key, plain log data. */
  put: { typeByte: 1, isKeyRequired: false, isServerOnly: false },
  /** A tombstone: removes `key` from the key-value view. */
  delete: { typeByte: 2, isKeyRequired: true, isServerOnly: false },
  /** A marker the server writes (where a compaction snapshot was taken). */
  checkpoint: { typeByte: 3, isKeyRequired: false, isServerOnly: true },
  /** A marker the server writes for FlushAll: the key-value view drops every key at this record. */
  flush_all: { typeByte: 4, isKeyRequired: false, isServerOnly: true },
  /**
   * The first phase of a transaction: `key` is the transaction id, `value` its writes
   * (src/codec/txn-writes.ts). The key-value view applies nothing here (docs/transactions.md).
   */
  prepare: { typeByte: 5, isKeyRequired: true, isServerOnly: false },
  /** Commits the transaction `key` names: the view applies its prepared writes here, at once. The value is empty. */
  commit: { typeByte: 6, isKeyRequired: true, isServerOnly: false },
  /** Aborts the transaction `key` names: its prepared writes are discarded. The value is the reason, UTF-8 (may be empty). */
  abort: { typeByte: 7, isKeyRequired: true, isServerOnly: false },
} as const satisfies Readonly<Record<string, RecordTypeSpec>>;

/** What a record is: a name of {@link RECORD_TYPES}. */
export type RecordType = keyof typeof RECORD_TYPES;

/** Every record type name, in {@link RECORD_TYPES} order. */
export const RECORD_TYPE_NAMES: readonly RecordType[] = Object.freeze(Object.keys(RECORD_TYPES) as RecordType[]);

const NAMES: ReadonlySet<unknown> = new Set(RECORD_TYPE_NAMES);

/** True when `value` names a record type (own names only: `toString` or `__proto__` are not types). */
export function isRecordType(value: unknown): value is RecordType {
  return NAMES.has(value);
}

/** Record headers: name -> bytes. */
export type RecordHeaders = Readonly<Record<string, Uint8Array>>;

/** One record of an append call. The log assigns its offset and timestamp. */
export interface AppendRecord {
  /** Optional key; absent and empty are different (an empty key is still a key). */
  readonly key?: Uint8Array | undefined;
  readonly value: Uint8Array;
  readonly headers?: RecordHeaders | undefined;
  /** Defaults to `put`. */
  readonly type?: RecordType | undefined;
}

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

/**
 * Adds the header `name` to a header map being built by a decoder. Assignment, except for the
 * name `__proto__`: assigning that would replace the object's prototype instead of adding an entry
 * (the header would vanish, and the prototype's own properties would show through as headers), so
 * it is defined as an own property instead. Plain assignment for every other name because
 * `Object.defineProperty` costs about twice as much per header (docs/benchmarks.md); a
 * null-prototype map would cost more still and would not compare equal to a plain object.
 */
export function setHeader<V>(headers: Record<string, V>, name: string, value: V): void {
  if (name === '__proto__') {
    Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    headers[name] = value;
  }
}
