import { Option, type Command } from 'commander';
import type { StateAtRequest } from '../gen/wald/v1/point_in_time.js';
import { parseNonNegativeInteger, parseTimestamp } from './arg-parsers.js';

/** The point-in-time options of a command: `--at TIME` or `--at-offset N`. */
export interface PointInTimeCommandOptions {
  /** ms since the epoch (parsed from RFC 3339 or epoch ms). */
  readonly at?: number | undefined;
  readonly atOffset?: number | undefined;
}

/**
 * Adds `--at <time>` (parsed by `parseTimestamp`, the one parser of instants: ms since the epoch or
 * RFC 3339) and `--at-offset <n>`, one or the other, to `command`.
 */
export function addPointInTimeOptions(command: Command, what: string): Command {
  return command
    .addOption(
      new Option('--at <time>', `${what} as it was at this instant (every record stamped at or before it): ms since the epoch or RFC 3339`)
        .argParser(parseTimestamp)
        .conflicts('atOffset'),
    )
    .addOption(new Option('--at-offset <n>', `${what} as it was before this offset (every record below it)`).argParser(parseNonNegativeInteger));
}

/** Whether a point in time was given. */
export function hasPointInTime(options: PointInTimeCommandOptions): boolean {
  return options.at !== undefined || options.atOffset !== undefined;
}

/** The `at` of a StateAt request from the options (undefined: the end of the log). */
export function stateAtPoint(options: PointInTimeCommandOptions): StateAtRequest['at'] {
  if (options.atOffset !== undefined) return { $case: 'offset', value: BigInt(options.atOffset) };
  if (options.at !== undefined) return { $case: 'timestampMs', value: BigInt(options.at) };
  return undefined;
}
