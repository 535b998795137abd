import type { WalError } from '../errors.js';

interface Waiter {
  readonly offset: number;
  readonly resolve: (moved: boolean) => void;
  readonly reject: (error: WalError) => void;
  readonly cleanup: () => void;
}

/** Tails parked until the high watermark passes an offset. */
export class HighWatermarkWaiters {
  private waiters: Waiter[] = [];

  /** Resolves `true` once `advance` reports a high watermark above `offset`, `false` on abort. */
  wait(offset: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      };
      const waiter: Waiter = {
        offset,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Wakes every waiter below `highWatermark`. */
  advance(highWatermark: number): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (highWatermark > w.offset) {
        w.cleanup();
        w.resolve(true);
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }

  /** Rejects every waiter (the log closed). */
  closeAll(error: WalError): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) {
      w.cleanup();
      w.reject(error);
    }
  }
}
