import type { SnapshotInfo } from './snapshot-info.js';

/**
 * The snapshots a compaction may delete once the log starts at `firstOffset`: full and
 * incremental snapshots below it (recovery cannot use them any more: the log after them is gone)
 * that are neither among the newest `keep` full or incremental snapshots nor the base of a kept
 * incremental (its chain must stay whole). Point snapshots are the operator's and never pruned.
 * `snapshots` are sorted by id (the order `listSnapshots` gives), which is wal offset order.
 */
export function prunableSnapshots(snapshots: readonly SnapshotInfo[], firstOffset: number, keep: number): SnapshotInfo[] {
  const states = snapshots.filter((info) => info.type !== 'point');
  const byId = new Map(states.map((info) => [info.id, info]));
  const kept = new Set<string>();
  states.forEach((info, i) => {
    if (info.walOffset >= firstOffset || i >= states.length - keep) kept.add(info.id);
  });
  // Bases of kept incrementals, down each chain (ids sort below their incrementals, so the walk ends).
  for (const info of [...states].reverse()) {
    if (kept.has(info.id) && info.baseId !== undefined && byId.has(info.baseId)) kept.add(info.baseId);
  }
  return states.filter((info) => !kept.has(info.id));
}
