import { SingleBar } from 'cli-progress';

/** A progress bar of bytes, and how to take it away. */
export interface BytesProgress {
  /** Shows `done` of `total` bytes under `label` (a new label starts a new bar). */
  update(label: string, done: number, total: number): void;
  /** Removes the bar, if one is drawn. */
  stop(): void;
}

/**
 * A bar (cli-progress) on stderr for the long offline snapshot commands (verify, restore), drawn
 * only when stderr is a terminal and the output is not JSON: scripts and pipes see nothing of it.
 * The bar is cleared when stopped, so what is printed after it stands alone.
 */
export function bytesProgress(isJson: boolean, stream: NodeJS.WriteStream = process.stderr): BytesProgress {
  if (isJson || stream.isTTY !== true) return { update: () => {}, stop: () => {} };
  let bar: SingleBar | undefined;
  let shown: string | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    shown = undefined;
  };
  return {
    update(label, done, total) {
      if (shown !== label) {
        stop();
        bar = new SingleBar({ stream, format: `${label} [{bar}] {percentage}% | {value}/{total} bytes`, clearOnComplete: true, hideCursor: true });
        bar.start(total, 0);
        shown = label;
      }
      bar?.update(done);
    },
    stop,
  };
}
