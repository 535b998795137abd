import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Copies a data directory as a crashed process would leave it for the next one: every file (the
 * `LOCK` too: it names this live process, and must not refuse the open, since its OS lock is not
 * copied) but temp files (crash debris that recovery removes and reports on its own; leaving them
 * out keeps each report to what a test is about). Works while a log is open on `from`.
 */
export function copyLogDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (name.endsWith('.tmp')) continue;
    copyFileSync(join(from, name), join(to, name));
  }
}
