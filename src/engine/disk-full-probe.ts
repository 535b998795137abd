import { join } from 'node:path';
import type { StorageFile } from '../storage/storage.js';
import { TEMP_SUFFIX } from './segment-name.js';
import type { ResolvedWalOptions } from './wal-options.js';

/** The largest probe file: enough to show a batch of the default size would fit. */
const MAX_PROBE_BYTES = 8 * 1024 * 1024 + 4096;

/**
 * Finds out when a full disk has room again: writes and syncs a batch-sized scratch file
 * (`space-probe.tmp`), on a timer every `diskFullProbeIntervalMs` and when an append arrives after
 * that interval. The first success calls `onSpace`.
 */
export class DiskFullProbe {
  private timer: NodeJS.Timeout | undefined;
  private lastProbeAt = 0;

  constructor(
    private readonly options: ResolvedWalOptions,
    private readonly onSpace: () => void,
  ) {}

  /** The disk just filled up: start probing. */
  start(): void {
    if (this.timer !== undefined) return;
    this.lastProbeAt = this.options.clock();
    this.timer = setInterval(() => this.probe(), this.options.diskFullProbeIntervalMs);
    this.timer.unref();
  }

  /** Probes if the last probe is older than the interval; true when there is room again. */
  probeIfDue(): boolean {
    if (this.options.clock() - this.lastProbeAt < this.options.diskFullProbeIntervalMs) return false;
    return this.probe();
  }

  /** Stops probing. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Tries to write a batch-sized file; on success stops probing and calls `onSpace`. */
  probe(): boolean {
    const { storage, dir, maxBatchBytes } = this.options;
    this.lastProbeAt = this.options.clock();
    const path = join(dir, 'space-probe' + TEMP_SUFFIX);
    let file: StorageFile | undefined;
    try {
      if (storage.exists(path)) storage.unlink(path);
      file = storage.open(path, 'create-new');
      file.writev([Buffer.alloc(Math.min(maxBatchBytes + 4096, MAX_PROBE_BYTES))], 0);
      file.datasync();
    } catch {
      return false;
    } finally {
      try {
        file?.close();
        if (storage.exists(path)) storage.unlink(path);
      } catch {
        // Debris is removed at the next open.
      }
    }
    this.stop();
    this.onSpace();
    return true;
  }
}
