import type { SegmentInfo } from '../engine/types.js';
import { planSegmentDeletion, type RetentionRules, type SegmentDeletionPlan } from './segment-retention.js';

/**
 * A follower's claim on the log: it still needs every record from `fromOffset` on (its durable
 * next offset), so compaction keeps the segments holding them while the lease stands. The leader's
 * follower registry makes one per follower it knows; the state layer knows nothing of followers.
 */
export interface RetentionLease {
  /** Who holds it (a follower id), for reports. */
  readonly holder: string;
  /** The first offset the holder lacks. */
  readonly fromOffset: number;
}

/** The caps of a lease (`replication.lease_max_bytes`, `replication.lease_max_age_ms`). */
export interface LeaseRules {
  /** Most bytes of sealed segments one lease keeps; a lease needing more lapses. 0: no leases. */
  readonly leaseMaxBytes: number;
  /** A lease lapses when the oldest sealed segment it needs has no record younger than this (ms). 0: no leases. */
  readonly leaseMaxAgeMs: number;
}

/**
 * Why a lease no longer keeps segments: it needs more than `leaseMaxBytes` (`bytes`), its oldest
 * segment is older than `leaseMaxAgeMs` (`age`), or what it needs is gone already (`compacted`).
 */
export type LeaseLapse = 'bytes' | 'age' | 'compacted';

/** How one lease stands against the caps now. */
export interface LeaseStanding {
  readonly holder: string;
  readonly fromOffset: number;
  /** Bytes of the sealed segments holding records at or after `fromOffset`. */
  readonly neededBytes: number;
  /** Why it lapsed; undefined while it stands. */
  readonly lapse: LeaseLapse | undefined;
  /** Bytes of sealed segments a compaction now would delete but keeps for this lease (0 when lapsed). */
  readonly heldBytes: number;
}

/** A deletion plan with leases applied, and what they held back. */
export interface LeasedDeletionPlan {
  /** What the compaction deletes. */
  readonly plan: SegmentDeletionPlan;
  /** Segments the plan without leases would delete, but this one keeps. */
  readonly heldSegments: number;
  /** Bytes of those segments. */
  readonly heldBytes: number;
  /** Holders of the standing leases that kept any of them, sorted. */
  readonly holders: readonly string[];
  /** Every lease, in the order given. */
  readonly standings: readonly LeaseStanding[];
}

/** The sealed segments that hold records at or after `fromOffset`, oldest first. */
function sealedFrom(segments: readonly SegmentInfo[], fromOffset: number): SegmentInfo[] {
  return segments.filter((segment) => !segment.isActive && segment.nextOffset > fromOffset);
}

function lapseOf(segments: readonly SegmentInfo[], lease: RetentionLease, nowMs: number, rules: LeaseRules): { neededBytes: number; lapse: LeaseLapse | undefined } {
  const needed = sealedFrom(segments, lease.fromOffset);
  let neededBytes = 0;
  for (const segment of needed) neededBytes += segment.sizeBytes;
  const first = segments[0];
  if (first !== undefined && lease.fromOffset < first.baseOffset) return { neededBytes, lapse: 'compacted' };
  if (needed.length === 0) return { neededBytes, lapse: undefined };
  if (neededBytes > rules.leaseMaxBytes) return { neededBytes, lapse: 'bytes' };
  if (needed[0]!.lastTimestamp < nowMs - rules.leaseMaxAgeMs || rules.leaseMaxAgeMs === 0) return { neededBytes, lapse: 'age' };
  return { neededBytes, lapse: undefined };
}

/**
 * What a compaction whose snapshot covers every record below `coverOffset` deletes at `nowMs`
 * when `leases` hold: {@link planSegmentDeletion}, except that a segment holding a record some
 * standing lease needs (and every segment after it) is kept. A lease stands while the sealed
 * segments it needs hold at most `leaseMaxBytes` and the oldest of them has a record younger than
 * `leaseMaxAgeMs`; a lapsed lease keeps nothing (all or nothing: part of what a follower needs
 * would not spare it a snapshot install). `maxLogBytes` wins over leases, as over retention.
 */
export function planLeasedDeletion(
  segments: readonly SegmentInfo[],
  coverOffset: number,
  nowMs: number,
  rules: RetentionRules & LeaseRules,
  leases: readonly RetentionLease[],
): LeasedDeletionPlan {
  const unleased = planSegmentDeletion(segments, coverOffset, nowMs, rules);
  const judged = leases.map((lease) => ({ lease, ...lapseOf(segments, lease, nowMs, rules) }));
  let keepFrom = Number.POSITIVE_INFINITY;
  for (const { lease, lapse } of judged) if (lapse === undefined) keepFrom = Math.min(keepFrom, lease.fromOffset);
  const plan = planSegmentDeletion(segments, coverOffset, nowMs, rules, keepFrom);
  const held = segments.slice(plan.segmentCount, unleased.segmentCount);
  let heldBytes = 0;
  for (const segment of held) heldBytes += segment.sizeBytes;
  const standings = judged.map(({ lease, neededBytes, lapse }): LeaseStanding => {
    let mine = 0;
    if (lapse === undefined) for (const segment of held) if (segment.nextOffset > lease.fromOffset) mine += segment.sizeBytes;
    return { holder: lease.holder, fromOffset: lease.fromOffset, neededBytes, lapse, heldBytes: mine };
  });
  const holders = [...new Set(standings.filter((standing) => standing.heldBytes > 0).map((standing) => standing.holder))].sort();
  return { plan, heldSegments: held.length, heldBytes, holders, standings };
}
