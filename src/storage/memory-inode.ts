/**
 * The bytes of one file of {@link MemoryStorage}: a buffer that grows geometrically, and a length
 * that may run past it.
 *
 * ```
 * 0                     writtenBytes              capacity                      length
 * |---- bytes written ----|---- zeros (allocated) ----|---- zeros (not allocated) ----|
 * ```
 *
 * Everything past `writtenBytes` reads as zeros, so preallocating a segment (`fillZeros` up to
 * its size) only moves `length`: a 64 MiB segment holding 1 KiB of records holds about 1 KiB of
 * memory. The buffer doubles as writes reach its end, but never past the file's length while the
 * writes stay inside it, so a preallocated segment written to its end holds its size once, not
 * twice.
 */
import type { MemoryBudget } from './memory-budget.js';

/** Least buffer of a file that holds any bytes. */
const MIN_CAPACITY_BYTES = 4096;

/** One file's bytes, shared by every open handle and every name of the file. */
export class MemoryInode {
  private bytes: Buffer = Buffer.alloc(0);
  /** Bytes up to which `bytes` holds what was written (zeros may be among them); the rest reads as zeros. */
  private writtenBytes = 0;
  /** The file's size. */
  length = 0;
  /** Open handles; the inode's memory is given back once it has neither a name nor a handle. */
  openHandles = 0;
  /** Whether a directory holds the file. */
  isLinked = true;

  constructor(private readonly budget: MemoryBudget) {}

  /** Bytes of memory the file counts against the budget (what was written; not the zeros after). */
  get heldBytes(): number {
    return this.writtenBytes;
  }

  /**
   * Writes `source` at `position`, growing the file as needed. Writes what fits in the budget and
   * returns how many bytes that was: fewer than `source.length` when the budget ran out.
   */
  write(source: Uint8Array, position: number): number {
    const end = position + source.length;
    const growth = Math.max(0, end - this.writtenBytes);
    const allowed = Math.min(growth, this.budget.availableBytes);
    const fits = allowed === growth ? source.length : Math.max(0, this.writtenBytes + allowed - position);
    if (fits === 0) return 0;
    const fitEnd = position + fits;
    this.reserve(fitEnd);
    this.bytes.set(fits === source.length ? source : source.subarray(0, fits), position);
    if (fitEnd > this.writtenBytes) {
      this.budget.take(fitEnd - this.writtenBytes);
      this.writtenBytes = fitEnd;
    }
    if (fitEnd > this.length) this.length = fitEnd;
    return fits;
  }

  /** Copies `[position, position + length)` into `target` from its start; returns the bytes copied (0 at the end). */
  read(target: Uint8Array, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.length - position));
    const fromBuffer = Math.max(0, Math.min(n, this.writtenBytes - position));
    if (fromBuffer > 0) target.set(this.bytes.subarray(position, position + fromBuffer), 0);
    if (fromBuffer < n) target.fill(0, fromBuffer, n);
    return n;
  }

  /** Zeros `[position, end)`, growing the file to `end` without allocating what it adds. */
  fillZeros(position: number, end: number): void {
    const allocatedEnd = Math.min(end, this.writtenBytes);
    if (position < allocatedEnd) this.bytes.fill(0, position, allocatedEnd);
    if (end > this.length) this.length = end;
  }

  /** Cuts or extends the file to `length` bytes; an extension reads as zeros and allocates nothing. */
  truncate(length: number): void {
    if (length < this.writtenBytes) {
      // Zeros past `writtenBytes` are what lets a later extension read as zeros.
      this.bytes.fill(0, length, this.writtenBytes);
      this.budget.give(this.writtenBytes - length);
      this.writtenBytes = length;
      // Give back a buffer mostly empty now (a segment cut back at its seal, a rewound tail).
      if (this.bytes.length > MIN_CAPACITY_BYTES && this.bytes.length > 2 * length) this.resize(Math.max(MIN_CAPACITY_BYTES, length));
    }
    this.length = length;
  }

  /** A copy of the whole file. */
  contents(): Buffer {
    const copy = Buffer.alloc(this.length);
    this.read(copy, this.length, 0);
    return copy;
  }

  /** Gives the file's memory back to the budget; the inode is not used again. */
  release(): void {
    this.budget.give(this.writtenBytes);
    this.bytes = Buffer.alloc(0);
    this.writtenBytes = 0;
    this.length = 0;
  }

  private reserve(end: number): void {
    if (end <= this.bytes.length) return;
    const doubled = Math.max(MIN_CAPACITY_BYTES, 2 * this.bytes.length);
    // Inside the file's length the size is known: grow to it at most, never to twice it.
    const ceiling = end <= this.length ? this.length : Number.POSITIVE_INFINITY;
    this.resize(Math.max(end, Math.min(doubled, ceiling)));
  }

  private resize(capacity: number): void {
    const next = Buffer.alloc(capacity);
    this.bytes.copy(next, 0, 0, Math.min(this.writtenBytes, capacity));
    this.bytes = next;
  }
}
