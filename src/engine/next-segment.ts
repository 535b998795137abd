import { join } from 'node:path';
import type { StorageFile } from '../storage/storage.js';
import { prepareSegmentFile } from './segment-file.js';
import { PREALLOCATED_FILE } from './segment-name.js';
import type { ResolvedWalOptions } from './wal-options.js';

/**
 * The next segment, zero-filled and synced in the background (`next-segment.tmp`) so that a
 * rotation finds its blocks allocated and the sync after it need not commit a new file size.
 * Failures only cost that speed: they go to `warn`, and the segment grows as it is written.
 */
export class NextSegment {
  private prepared: StorageFile | undefined;
  private preparing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly options: ResolvedWalOptions,
    private readonly warn: (message: string, error: unknown) => void,
  ) {}

  /** Starts preparing the next segment unless one is ready or on its way. Never rejects. */
  prepare(): Promise<void> {
    if (!this.options.preallocate || this.prepared !== undefined || this.closed) return Promise.resolve();
    this.preparing ??= prepareSegmentFile(this.options).then(
      (file) => {
        this.preparing = undefined;
        if (this.closed) this.discard(file);
        else this.prepared = file;
      },
      (error: unknown) => {
        this.preparing = undefined;
        if (!this.closed) this.warn('preallocating the next segment failed; it will grow as it is written', error);
      },
    );
    return this.preparing;
  }

  /** Hands the prepared file over (to become the next segment), if one is ready. */
  take(): StorageFile | undefined {
    const file = this.prepared;
    this.prepared = undefined;
    return file;
  }

  /** Stops preparing and removes a prepared file that was never used. */
  async close(): Promise<void> {
    this.closed = true;
    await this.preparing;
    const file = this.take();
    if (file !== undefined) this.discard(file);
  }

  private discard(file: StorageFile): void {
    try {
      file.close();
      this.options.storage.unlink(join(this.options.dir, PREALLOCATED_FILE));
    } catch (error) {
      // Debris is removed at the next open.
      this.warn('removing the preallocated next segment failed; the next open removes it', error);
    }
  }
}
