import { createLatencyHistogram, recordLatencyMs, summarizeLatency, type LatencyHistogram, type LatencySummary } from './latency.js';

/**
 * The run over time, one point per interval (1 s by default): what was sent and answered in it,
 * the latency of the replies that arrived in it, and what was in flight and lagging at its end.
 * The whole run's histogram is kept separately, so percentiles are never averaged; it leaves out
 * requests due during the warm-up (`warmupMs` from the start), which the points still show.
 */
export interface TimelinePoint {
  /** Seconds from the start of traffic to the end of the interval. */
  t: number;
  sent: number;
  answered: number;
  /** Requests sent but not answered yet, at the end of the interval. */
  inFlight: number;
  /** Consumer lag of the service's group on the request topic (null when not measured). */
  lag: number | null;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface Timeline {
  /** Sets the start of traffic (performance.now()); points count their time from it. */
  begin(atMs: number): void;
  recordSent(count?: number): void;
  /** A first reply, `latencyMs` after `dueAtMs` (performance.now()), when its request was due. */
  recordAnswer(latencyMs: number, dueAtMs: number): void;
  /** Closes the current interval (called by the run's clock). */
  close(atMs: number, inFlight: number, lag: number | null): TimelinePoint;
  readonly points: TimelinePoint[];
  /** The whole run so far, after the warm-up. */
  readonly overall: LatencyHistogram;
  summary(): LatencySummary;
}

export function createTimeline({ warmupMs = 0 }: { warmupMs?: number } = {}): Timeline {
  let startedAt = performance.now();
  const overall = createLatencyHistogram();
  const interval = createLatencyHistogram();
  const points: TimelinePoint[] = [];
  let sent = 0;
  let answered = 0;
  return {
    points,
    overall,
    begin(atMs) {
      startedAt = atMs;
    },
    recordSent(count = 1) {
      sent += count;
    },
    recordAnswer(latencyMs, dueAtMs) {
      answered++;
      if (dueAtMs >= startedAt + warmupMs) recordLatencyMs(overall, latencyMs);
      recordLatencyMs(interval, latencyMs);
    },
    close(atMs, inFlight, lag) {
      const s = summarizeLatency(interval);
      const point: TimelinePoint = {
        t: Math.round(atMs - startedAt) / 1_000,
        sent,
        answered,
        inFlight,
        lag,
        p50: s.p50,
        p99: s.p99,
        max: s.max,
      };
      points.push(point);
      interval.reset();
      sent = 0;
      answered = 0;
      return point;
    },
    summary: () => summarizeLatency(overall),
  };
}
