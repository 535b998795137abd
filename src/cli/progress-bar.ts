import { SingleBar } from 'cli-progress';
import { NO_PROGRESS, type Progress } from '../offline/progress.js';

/** A {@link Progress} drawn as a bar on stderr, and how to take the bar away when done. */
export interface ProgressBar extends Progress {
  /** Removes the bar (a no-op when none was drawn). */
  stop(): void;
}

/**
 * A progress bar (cli-progress) on stderr for a long offline run, labelled `label`, only when
 * stderr is a terminal and the caller is not `isQuiet` (JSON output, or output that goes to the
 * same terminal while the bar runs): scripts and pipes see nothing of it. The bar appears at the
 * first bytes announced and is cleared when stopped, so what is printed after it stands alone.
 */
export function progressBar(label: string, isQuiet: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (isQuiet || stream.isTTY !== true) return { ...NO_PROGRESS, stop: () => {} };
  const bar = new SingleBar({
    stream,
    format: `${label} [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}`,
    clearOnComplete: true,
    hideCursor: true,
  });
  let total = 0;
  let isStarted = false;
  return {
    addTotal(bytes) {
      total += bytes;
      if (isStarted) bar.setTotal(total);
      else {
        bar.start(total, 0);
        isStarted = true;
      }
    },
    advance(bytes) {
      if (isStarted) bar.increment(bytes);
    },
    stop() {
      if (isStarted) bar.stop();
      isStarted = false;
    },
  };
}
