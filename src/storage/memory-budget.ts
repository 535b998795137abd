/**
 * The bytes all files of one {@link MemoryStorage} hold, against its cap: what `freeBytes`
 * reports and what makes a write past the cap fail with `ENOSPC`, as a full disk would.
 */
export class MemoryBudget {
  private used = 0;

  /** @param maxBytes the cap; `Infinity` for none. */
  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get usedBytes(): number {
    return this.used;
  }

  /** Bytes that may still be taken (`Infinity` without a cap). */
  get availableBytes(): number {
    return Math.max(0, this.maxBytes - this.used);
  }

  /** Counts `bytes` more; the caller checked {@link availableBytes}. */
  take(bytes: number): void {
    this.used += bytes;
  }

  /** Counts `bytes` fewer. */
  give(bytes: number): void {
    this.used -= bytes;
  }
}
