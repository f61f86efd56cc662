/**
 * A partition's consumer-lag status, judged over a sliding window of samples the way Burrow
 * judges it (github.com/linkedin/Burrow, "Consumer Lag Evaluation Rules"), adapted to what an
 * admin client can read (committed offsets and log ends, not every commit):
 *
 * - REWIND: the committed offset went back within the window (a reset, a replay).
 * - OK:     lag was 0 at some sample of the window, or the window is not full yet.
 * - STOP:   lag > 0 and the committed offset has not moved for `stopAfterMs`, or the group has had
 *           no member over the whole window: nobody commits.
 * - STALL:  lag > 0 and the committed offset did not move over the whole window although the
 *           group has members: consumers are there but not getting anywhere.
 * - WARN:   the offset moves, but lag never went down over the window and ended higher: falling behind.
 * - OK:     otherwise.
 *
 * A group's status is its worst partition's (LAG_SEVERITY).
 */
export type LagStatus = 'OK' | 'WARN' | 'REWIND' | 'STALL' | 'STOP';

export const LAG_STATUSES: readonly LagStatus[] = ['OK', 'WARN', 'REWIND', 'STALL', 'STOP'];

/** Worse is higher. */
export const LAG_SEVERITY: Record<LagStatus, number> = { OK: 0, WARN: 1, REWIND: 2, STALL: 3, STOP: 4 };

export interface LagSample {
  /** ms since epoch. */
  at: number;
  /** The group's committed offset (the next to read); null before its first commit. */
  committed: number | null;
  /** The log end offset (high watermark). */
  end: number;
  lag: number;
  /** Members in the group when sampled. */
  members: number;
}

export interface LagWindow {
  /** Samples that make a full window (Burrow's `intervals`, 10 by default). */
  samples: number;
  /** How long an unmoved offset with lag > 0 may last before it is STOP. */
  stopAfterMs: number;
}

/** `samples` oldest first (at most the window's, older ones dropped); `movedAt`: when the committed offset last changed. */
export function lagStatus(samples: readonly LagSample[], movedAt: number, window: LagWindow, now = samples.at(-1)?.at ?? 0): LagStatus {
  const recent = samples.slice(-window.samples);
  const last = recent.at(-1);
  if (!last) return 'OK';
  for (let i = 1; i < recent.length; i++) {
    const [a, b] = [recent[i - 1]!.committed, recent[i]!.committed];
    if (a !== null && b !== null && b < a) return 'REWIND';
  }
  if (recent.some((s) => s.lag === 0)) return 'OK';
  if (recent.length < window.samples) return 'OK';
  if (now - movedAt >= window.stopAfterMs) return 'STOP';
  const unmoved = recent.every((s) => s.committed === last.committed);
  if (unmoved) return recent.every((s) => s.members === 0) ? 'STOP' : 'STALL';
  let neverDown = true;
  for (let i = 1; i < recent.length; i++) if (recent[i]!.lag < recent[i - 1]!.lag) neverDown = false;
  if (neverDown && last.lag > recent[0]!.lag) return 'WARN';
  return 'OK';
}

export function worstStatus(statuses: Iterable<LagStatus>): LagStatus {
  let worst: LagStatus = 'OK';
  for (const s of statuses) if (LAG_SEVERITY[s] > LAG_SEVERITY[worst]) worst = s;
  return worst;
}
