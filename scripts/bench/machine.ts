import * as fs from 'node:fs';
import * as os from 'node:os';

/** Names of the file systems a scratch directory is likely to be on, by `statfs` magic number. */
const FS_NAMES: Readonly<Record<number, string>> = {
  0xef53: 'ext2/3/4',
  0x01021994: 'tmpfs',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x794c7630: 'overlayfs',
};

/** The facts about the machine a benchmark table needs beside it. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly scratchFs: string;
}

/** Describes this machine and the file system under `scratchDir`. */
export function describeMachine(scratchDir: string): MachineInfo {
  const cpus = os.cpus();
  const type = fs.statfsSync(scratchDir).type;
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    scratchFs: FS_NAMES[type] ?? `0x${type.toString(16)}`,
  };
}

/** The 1-minute load average and the share of time some task waited for I/O (10 s average, %). */
export function machineLoad(): string {
  const load = os.loadavg()[0]!.toFixed(2);
  let io = 'n/a';
  try {
    io = /avg10=([\d.]+)/.exec(fs.readFileSync('/proc/pressure/io', 'utf8'))?.[1] ?? 'n/a';
  } catch {
    // No pressure stall information on this kernel.
  }
  return `load ${load}, io pressure ${io}%`;
}

/** True when `dir` lives in memory, where fsync costs nothing and the figures would mislead. */
export function isTmpfs(dir: string): boolean {
  return fs.statfsSync(dir).type === 0x01021994;
}
