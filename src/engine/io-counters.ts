/** Mutable I/O counters shared by the writer and the readers of one log. */
export class IoCounters {
  bytesWritten = 0;
  bytesRead = 0;
  writes = 0;
  reads = 0;
  fsyncs = 0;
}
