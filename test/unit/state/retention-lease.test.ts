/**
 * planLeasedDeletion: a follower's retention lease keeps the segments it still needs from a
 * compaction, within lease_max_bytes and lease_max_age_ms; beyond either it lapses and keeps
 * nothing; compaction.max_log_bytes wins over it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planLeasedDeletion } from '../../../src/state/retention-lease.js';

const seg = (baseOffset: number, nextOffset: number, lastTimestamp: number, isActive = false) => ({ baseOffset, nextOffset, sizeBytes: 100, dataBytes: 100, lastTimestamp, isActive });
/** Three sealed segments of 100 bytes (newest records at 1000, 2000, 3000) and the active one. */
const segments = [seg(0, 10, 1000), seg(10, 20, 2000), seg(20, 30, 3000), seg(30, 35, 4000, true)];
/** No retention: without leases, every sealed segment goes. */
const rules = { retentionMs: 0, maxLogBytes: 0, leaseMaxBytes: 1000, leaseMaxAgeMs: 10_000 };

describe('planLeasedDeletion', () => {
  test('keeps the segment holding the first record a follower lacks, and every one after it', () => {
    const leased = planLeasedDeletion(segments, 100, 5000, rules, [{ holder: 'f1', fromOffset: 15 }]);
    assert.equal(leased.plan.segmentCount, 1, 'only the segment wholly below offset 15 goes');
    assert.equal(leased.plan.trimOffset, 10);
    assert.deepEqual([leased.heldSegments, leased.heldBytes, leased.holders], [2, 200, ['f1']]);
    assert.deepEqual(leased.standings, [{ holder: 'f1', fromOffset: 15, neededBytes: 200, lapse: undefined, heldBytes: 200 }]);
  });

  test('the oldest need wins among leases, each holding what it needs', () => {
    const leased = planLeasedDeletion(segments, 100, 5000, rules, [
      { holder: 'late', fromOffset: 25 },
      { holder: 'early', fromOffset: 5 },
    ]);
    assert.equal(leased.plan.segmentCount, 0);
    assert.deepEqual(leased.holders, ['early', 'late']);
    assert.deepEqual(leased.standings.map((s) => s.heldBytes), [100, 300]);
  });

  test('a follower that lacks nothing sealed holds nothing', () => {
    const leased = planLeasedDeletion(segments, 100, 5000, rules, [{ holder: 'f1', fromOffset: 32 }]);
    assert.equal(leased.plan.segmentCount, 3);
    assert.deepEqual([leased.heldSegments, leased.holders, leased.standings[0]?.lapse], [0, [], undefined]);
  });

  test('a lease needing more than lease_max_bytes lapses and keeps nothing', () => {
    const leased = planLeasedDeletion(segments, 100, 5000, { ...rules, leaseMaxBytes: 250 }, [{ holder: 'f1', fromOffset: 5 }]);
    assert.equal(leased.plan.segmentCount, 3, 'the follower falls back to a snapshot install');
    assert.equal(leased.standings[0]?.lapse, 'bytes');
    assert.equal(leased.standings[0]?.heldBytes, 0);
    assert.equal(planLeasedDeletion(segments, 100, 5000, { ...rules, leaseMaxBytes: 300 }, [{ holder: 'f1', fromOffset: 5 }]).plan.segmentCount, 0, 'at the cap it stands');
  });

  test('a lease whose oldest segment is older than lease_max_age_ms lapses', () => {
    const leased = planLeasedDeletion(segments, 100, 12_000, rules, [{ holder: 'f1', fromOffset: 5 }]);
    assert.equal(leased.standings[0]?.lapse, 'age', 'the newest record of segment 0 is 11 s old');
    assert.equal(leased.plan.segmentCount, 3);
    assert.equal(planLeasedDeletion(segments, 100, 12_000, rules, [{ holder: 'f1', fromOffset: 15 }]).plan.segmentCount, 1, 'a younger need stands');
  });

  test('compaction.max_log_bytes wins over a standing lease; the cover still bounds it', () => {
    const leased = planLeasedDeletion(segments, 100, 5000, { ...rules, maxLogBytes: 250 }, [{ holder: 'f1', fromOffset: 5 }]);
    assert.equal(leased.plan.segmentCount, 2, 'the oldest go until the files hold at most 250 bytes');
    assert.equal(planLeasedDeletion(segments, 15, 5000, rules, [{ holder: 'f1', fromOffset: 25 }]).plan.segmentCount, 1, 'never past the cover');
  });

  test('a lease below the first retained offset has lapsed already', () => {
    const leased = planLeasedDeletion(segments.slice(1), 100, 5000, rules, [{ holder: 'f1', fromOffset: 5 }]);
    assert.equal(leased.standings[0]?.lapse, 'compacted');
    assert.equal(leased.plan.segmentCount, 2);
  });
});
