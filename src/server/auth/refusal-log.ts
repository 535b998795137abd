import type { Logger } from 'pino';

/**
 * The log lines of refused calls (failed authentications, denied permissions), at most
 * `linesPerSecond` a second: a client retrying with a bad token, or a scan, must not flood the
 * log. Lines past the budget are counted, not written; the first line of a later second says how
 * many were left out since the last written one (`suppressed`). The refusals themselves are all
 * counted elsewhere (the authenticator's counters, the metrics), so nothing is lost but the text.
 */
export class RefusalLog {
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private writtenInWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    /** `auth_refusal_log_per_second`: lines written per second at most; 0 writes none. */
    private readonly linesPerSecond: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Lines left out since the last line written. */
  get suppressedCount(): number {
    return this.suppressed;
  }

  /** Writes a warning `message` with `fields`, unless this second's budget is spent (then counts it). */
  warn(fields: Readonly<Record<string, unknown>>, message: string): void {
    const now = this.clock();
    if (now - this.windowStartMs >= 1000) {
      this.windowStartMs = now;
      this.writtenInWindow = 0;
    }
    if (this.writtenInWindow >= this.linesPerSecond) {
      this.suppressed += 1;
      return;
    }
    this.writtenInWindow += 1;
    if (this.suppressed === 0) {
      this.logger.warn(fields, message);
      return;
    }
    this.logger.warn({ ...fields, suppressed: this.suppressed }, message);
    this.suppressed = 0;
  }
}
