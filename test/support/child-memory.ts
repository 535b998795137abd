/**
 * The memory of a child process as the kernel counts it (/proc/<pid>/status), for the tests that
 * bound a `wald serve` child's memory from outside: whatever holds the bytes (wald's queues,
 * grpc-js, Node's HTTP/2 buffers, V8's heap) is counted, not only what the server's counters see.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

/** Bytes in a mebibyte, for the bounds and their diagnostics. */
export const MiB = 1024 * 1024;

/** The resident set of process `pid` now and at its peak (the kernel's high-water mark), bytes. */
export function memoryOf(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    assert.ok(match !== null, `no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

/** File descriptors process `pid` holds open now (its sockets among them). */
export function openFdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** `bytes` in MiB with one decimal, for diagnostics and messages. */
export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
