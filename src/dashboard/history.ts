import type { WorkerMetrics } from '../metrics/registry.js';
import { DURATION_BUCKETS, emptyHistogram, type HistogramData } from '../thread-metrics.js';

/**
 * The overview's charts: every `intervalMs` the workers' counts (the ones `/metrics` shows) are
 * summed per service and kept for `points` intervals (10 minutes by default), so a page opened now
 * shows the last minutes at once. Rates and latencies are over the last `smoothing` intervals:
 * the counts arrive with heartbeats, and one interval alone would see one heartbeat or two.
 */
export interface ServicePoint {
  /** Messages handed to handlers per second. */
  consumed: number;
  /** Messages sent and acknowledged per second. */
  sent: number;
  /** Handler attempts that threw, per second. */
  errors: number;
  /** Handler duration percentiles over the interval, in ms (null without attempts). */
  p50: number | null;
  p95: number | null;
}

export interface HistoryPoint {
  at: number;
  services: Record<string, ServicePoint>;
}

interface Totals {
  at: number;
  services: Map<string, { consumed: number; sent: number; errors: number; process: HistogramData }>;
}

export interface History {
  points(): HistoryPoint[];
  readonly intervalMs: number;
  /** Called with each new point. */
  onPoint(listener: (point: HistoryPoint) => void): () => void;
  stop(): void;
}

export function startHistory(
  workers: () => WorkerMetrics[],
  { intervalMs = 2_000, points: capacity = 300, smoothing = 3 }: { intervalMs?: number; points?: number; smoothing?: number } = {},
): History {
  const totals: Totals[] = [];
  const points: HistoryPoint[] = [];
  const listeners = new Set<(point: HistoryPoint) => void>();

  function sample(): void {
    const now: Totals = { at: Date.now(), services: new Map() };
    for (const w of workers()) {
      const name = w.status.service;
      let s = now.services.get(name);
      if (!s) now.services.set(name, (s = { consumed: 0, sent: 0, errors: 0, process: emptyHistogram() }));
      for (const n of Object.values(w.thread.consumed)) s.consumed += n;
      for (const n of Object.values(w.thread.sent)) s.sent += n;
      s.errors += w.delivery.errors;
      for (const h of Object.values(w.thread.process)) {
        h.counts.forEach((c, i) => (s.process.counts[i]! += c));
        s.process.sum += h.sum;
      }
    }
    totals.push(now);
    if (totals.length > smoothing + 1) totals.shift();
    const then = totals[0]!;
    if (then === now) return;
    const seconds = (now.at - then.at) / 1000;
    const services: Record<string, ServicePoint> = {};
    for (const [name, s] of now.services) {
      const before = then.services.get(name) ?? { consumed: 0, sent: 0, errors: 0, process: emptyHistogram() };
      const counts = s.process.counts.map((c, i) => c - (before.process.counts[i] ?? 0));
      services[name] = {
        consumed: rate(s.consumed - before.consumed, seconds),
        sent: rate(s.sent - before.sent, seconds),
        errors: rate(s.errors - before.errors, seconds),
        p50: quantileMs(counts, 0.5),
        p95: quantileMs(counts, 0.95),
      };
    }
    const point = { at: now.at, services };
    points.push(point);
    if (points.length > capacity) points.shift();
    for (const listener of listeners) listener(point);
  }

  const timer = setInterval(sample, intervalMs);
  timer.unref();
  sample();
  return {
    intervalMs,
    points: () => [...points],
    onPoint(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => clearInterval(timer),
  };
}

function rate(delta: number, seconds: number): number {
  // A slot's counts never go back, but a worker gone from the list (none is) would look like one.
  return delta > 0 ? Math.round((delta / seconds) * 10) / 10 : 0;
}

/** The q-quantile of bucket counts (not cumulative; the last above the last bound), interpolated within its bucket, in ms. */
export function quantileMs(counts: number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      const low = i === 0 ? 0 : DURATION_BUCKETS[i - 1]!;
      // Above the last bound nothing is known but that: show the bound.
      const high = DURATION_BUCKETS[i] ?? DURATION_BUCKETS[DURATION_BUCKETS.length - 1]!;
      return Math.round((low + ((high - low) * (rank - seen)) / c) * 1e5) / 100;
    }
    seen += c;
  }
  return null;
}
