import type { LogFault } from '../offline/log-fault.js';

/** A one-line description of a fault of the offline tools, for text output. */
export function describeFault(fault: LogFault): string {
  const at = fault.position === undefined ? '' : ` at byte ${fault.position}`;
  const around: string[] = [];
  if (fault.lastGoodOffset !== undefined) around.push(`last good offset ${fault.lastGoodOffset}`);
  if (fault.nextGoodOffset !== undefined) around.push(`next valid frame: offset ${fault.nextGoodOffset} at byte ${fault.nextGoodPosition ?? '?'}`);
  if (fault.bytes !== undefined) around.push(`the next open cuts ${fault.bytes} bytes`);
  return `${fault.kind} in ${fault.file}${at}: ${fault.reason}${around.length === 0 ? '' : ` (${around.join('; ')})`}`;
}

/** The JSON form of a fault: snake_case names, absent values as null. */
export function faultToJson(fault: LogFault): Record<string, string | number | null> {
  return {
    kind: fault.kind,
    file: fault.file,
    position: fault.position ?? null,
    reason: fault.reason,
    last_good_offset: fault.lastGoodOffset ?? null,
    next_good_offset: fault.nextGoodOffset ?? null,
    next_good_position: fault.nextGoodPosition ?? null,
    bytes: fault.bytes ?? null,
  };
}
