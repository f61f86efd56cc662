import hdr, { type Histogram } from 'hdr-histogram-js';

/**
 * End-to-end latencies in an HDR histogram: values are recorded in microseconds with three
 * significant digits, so every percentile is within 0.1 % of the true value while memory stays
 * fixed however many messages a run sends (a sorted array of 300,000 samples would not).
 */
export type LatencyHistogram = Histogram;

/** One hour, in microseconds: a reply later than that is clamped, not dropped. */
const HIGHEST_US = 3_600_000_000;

export function createLatencyHistogram(): LatencyHistogram {
  // The pure-JS implementation: WebAssembly would need an async init for little gain at these rates.
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Records one latency given in milliseconds (fractions kept down to the microsecond). */
export function recordLatencyMs(histogram: LatencyHistogram, ms: number): void {
  const us = Math.round(ms * 1_000);
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(1, us)));
}

/** Percentiles in milliseconds; all null when nothing was recorded. */
export interface LatencySummary {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

const PERCENTILES = { p50: 50, p90: 90, p99: 99, p999: 99.9 } as const;

const toMs = (us: number) => Math.round(us) / 1_000;

export function summarizeLatency(histogram: LatencyHistogram): LatencySummary {
  const count = histogram.totalCount;
  if (count === 0) return { count: 0, min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null };
  // A percentile is reported as the top of its bucket, which can exceed the largest value actually
  // recorded: clamp, so p99.9 is never above max.
  const at = (percentile: number) => toMs(Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue));
  return {
    count,
    min: toMs(histogram.minNonZeroValue),
    mean: Math.round(histogram.mean) / 1_000,
    p50: at(PERCENTILES.p50),
    p90: at(PERCENTILES.p90),
    p99: at(PERCENTILES.p99),
    p999: at(PERCENTILES.p999),
    max: toMs(histogram.maxValue),
  };
}
