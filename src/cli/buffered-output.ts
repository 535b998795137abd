import { printText } from './output.js';

/** Bytes (UTF-16 code units) gathered before a write to stdout. */
const FLUSH_CHARS = 64 * 1024;

/**
 * Text for stdout gathered into writes of about 64 KiB: a command that prints millions of short
 * lines (`wald dump`) would otherwise spend most of its time in one write call per line.
 * stdout to a file or a pipe is written synchronously on Linux, so nothing piles up in memory.
 */
export class BufferedOutput {
  private parts: string[] = [];
  private chars = 0;

  /** Adds text; writes what is gathered once it passes 64 KiB. */
  write(text: string): void {
    this.parts.push(text);
    this.chars += text.length;
    if (this.chars >= FLUSH_CHARS) this.flush();
  }

  /** Writes everything gathered. */
  flush(): void {
    if (this.parts.length === 0) return;
    printText(this.parts.join(''));
    this.parts = [];
    this.chars = 0;
  }
}
