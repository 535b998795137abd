/**
 * How busy the client (this process) and the server process were during a measurement: the CPU
 * time each used divided by the elapsed time, in % of one core. A side at ~100 % is what limits a
 * row on this 2-core machine.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Measurement, Runner } from './runner.js';

/** CPU use during one measurement, in % of one core. */
export interface CpuShare {
  readonly clientPercent: number;
  readonly serverPercent: number;
}

let ticksPerSecond: number | undefined;

function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time of process `pid` so far, ms (Linux `/proc`; 10 ms resolution). */
export function processCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / clockTicksPerSecond();
}

function selfCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * Wraps `runner` so that every run also appends the CPU shares of this process and of the server
 * process `serverPid` to `into`.
 */
export function trackCpu(runner: Runner, serverPid: number, into: CpuShare[]): Runner {
  return {
    run: async (runMs): Promise<Measurement> => {
      const start = performance.now();
      const client = selfCpuMs();
      const server = processCpuMs(serverPid);
      const measurement = await runner.run(runMs);
      const elapsedMs = performance.now() - start;
      into.push({
        clientPercent: ((selfCpuMs() - client) / elapsedMs) * 100,
        serverPercent: ((processCpuMs(serverPid) - server) / elapsedMs) * 100,
      });
      return measurement;
    },
    close: () => runner.close(),
  };
}
