import { describe, expect, it } from 'vitest';
import { lagStatus, worstStatus, type LagSample, type LagWindow } from '../../src/metrics/lag-status.js';

/** Burrow's rules on sequences of samples, one every 10 s: [committed, end] pairs, members in the group. */
const WINDOW: LagWindow = { samples: 5, stopAfterMs: 120_000 };

function judge(points: [committed: number | null, end: number][], { members = 1, stillFor = 0 } = {}) {
  const samples: LagSample[] = points.map(([committed, end], i) => ({
    at: i * 10_000,
    committed,
    end,
    lag: committed === null ? end : end - committed,
    members,
  }));
  // When the committed offset last changed (what the monitor tracks across windows).
  let movedAt = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i]!.committed !== samples[i - 1]!.committed) movedAt = samples[i]!.at;
  const now = samples.at(-1)!.at + stillFor;
  return lagStatus(samples, movedAt - (stillFor > 0 && movedAt === 0 ? stillFor : 0), WINDOW, now);
}

describe('consumer lag status over a window', () => {
  it('is OK while the window is not full, or when lag touched 0 in it', () => {
    expect(judge([[0, 100]])).toBe('OK');
    expect(
      judge([
        [0, 100],
        [0, 100],
        [0, 100],
      ]),
    ).toBe('OK');
    expect(
      judge([
        [100, 100],
        [100, 110],
        [100, 120],
        [100, 130],
        [100, 140],
      ]),
    ).toBe('OK');
  });

  it('is OK when the consumer keeps up with lag going up and down', () => {
    expect(
      judge([
        [0, 50],
        [40, 80],
        [70, 100],
        [100, 120],
        [130, 150],
      ]),
    ).toBe('OK');
    expect(
      judge([
        [0, 50],
        [40, 95],
        [90, 100],
        [100, 150],
        [145, 150],
      ]),
    ).toBe('OK');
  });

  it('is WARN when offsets move but lag never goes down over the window', () => {
    expect(
      judge([
        [0, 10],
        [10, 30],
        [20, 50],
        [30, 70],
        [40, 90],
      ]),
    ).toBe('WARN');
    // Level lag never ends higher than it began: not WARN.
    expect(
      judge([
        [0, 10],
        [10, 20],
        [20, 30],
        [30, 40],
        [40, 50],
      ]),
    ).toBe('OK');
  });

  it('is STALL when the offset does not move while lag > 0 and the group has members', () => {
    expect(
      judge([
        [40, 90],
        [40, 90],
        [40, 95],
        [40, 95],
        [40, 100],
      ]),
    ).toBe('STALL');
  });

  it('is STOP when nobody is in the group for the whole window, or the offset has not moved for stopAfterMs', () => {
    expect(
      judge(
        [
          [40, 90],
          [40, 90],
          [40, 95],
          [40, 95],
          [40, 100],
        ],
        { members: 0 },
      ),
    ).toBe('STOP');
    expect(
      judge(
        [
          [40, 90],
          [40, 90],
          [40, 90],
          [40, 90],
          [40, 90],
        ],
        { stillFor: 200_000 },
      ),
    ).toBe('STOP');
    // A group that never committed, with messages waiting and nobody there.
    expect(
      judge(
        [
          [null, 5],
          [null, 5],
          [null, 6],
          [null, 6],
          [null, 7],
        ],
        { members: 0 },
      ),
    ).toBe('STOP');
  });

  it('is REWIND when the committed offset went back, full window or not', () => {
    expect(
      judge([
        [100, 200],
        [50, 200],
      ]),
    ).toBe('REWIND');
    expect(
      judge([
        [100, 200],
        [150, 200],
        [20, 200],
        [40, 200],
        [60, 200],
      ]),
    ).toBe('REWIND');
    // Gone back out of the window: judged on what the window holds.
    expect(
      judge([
        [100, 200],
        [20, 200],
        [40, 200],
        [60, 200],
        [80, 200],
        [100, 200],
      ]),
    ).toBe('OK');
  });

  it('gives a group its worst partition status', () => {
    expect(worstStatus([])).toBe('OK');
    expect(worstStatus(['OK', 'WARN', 'OK'])).toBe('WARN');
    expect(worstStatus(['WARN', 'REWIND'])).toBe('REWIND');
    expect(worstStatus(['STALL', 'REWIND', 'WARN'])).toBe('STALL');
    expect(worstStatus(['STALL', 'STOP', 'OK'])).toBe('STOP');
  });
});
