/**
 * The deletions a state remembers, in offset order, so that forgetting those a snapshot covers
 * (`KeyState.forgetChangesBefore`) takes one step per deletion rather than a scan of every key.
 */
import { DELETED, type EntryStore } from './entry-store.js';

/**
 * Each `DELETE` that removed a key: its slot and offset. An entry goes stale when its key is put
 * again (and maybe deleted again, which adds another entry); stale entries are skipped, and dropped
 * before they outnumber the deletions still current by much. A transaction deletes, puts and
 * deletes one key at one offset (its COMMIT's): both entries then look current, and a slot is
 * taken once.
 */
export class DeletionQueue {
  private slots: number[] = [];
  private offsets: number[] = [];

  constructor(private readonly store: EntryStore) {}

  /** Records that `slot` was deleted at `offset` (the latest offset so far); `current` is how many deletions the store holds. */
  push(slot: number, offset: number, current: number): void {
    this.slots.push(slot);
    this.offsets.push(offset);
    // A key deleted and put again over and over leaves stale entries: drop them before they outgrow the deletions.
    if (this.slots.length > 2 * current + 1024) this.compact();
  }

  /** Takes out every entry below `offset`; returns the slots whose deletion there is still their latest change. */
  takeBefore(offset: number): number[] {
    let end = 0;
    while (end < this.slots.length && this.offsets[end]! < offset) end++;
    const current: number[] = [];
    const taken = new Set<number>();
    for (let i = 0; i < end; i++) {
      const slot = this.slots[i]!;
      if (this.isCurrent(slot, this.offsets[i]!) && !taken.has(slot)) {
        taken.add(slot);
        current.push(slot);
      }
    }
    this.slots.splice(0, end);
    this.offsets.splice(0, end);
    return current;
  }

  /** True when the deletion of `slot` at `offset` is still its latest change. */
  private isCurrent(slot: number, offset: number): boolean {
    return this.store.valueLengthOf(slot) === DELETED && this.store.offsetOf(slot) === offset;
  }

  private compact(): void {
    const slots: number[] = [];
    const offsets: number[] = [];
    const kept = new Set<number>();
    for (let i = 0; i < this.slots.length; i++) {
      if (!this.isCurrent(this.slots[i]!, this.offsets[i]!) || kept.has(this.slots[i]!)) continue;
      kept.add(this.slots[i]!);
      slots.push(this.slots[i]!);
      offsets.push(this.offsets[i]!);
    }
    this.slots = slots;
    this.offsets = offsets;
  }
}
