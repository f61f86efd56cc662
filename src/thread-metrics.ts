/**
 * What one thread counts for `/metrics`, kept cheap on the hot path: plain numbers in maps keyed
 * by topic, histograms as arrays of bucket counts. A worker ships a `snapshot()` with each
 * heartbeat (never a message per event); the supervisor adds the snapshots of a slot's ended
 * threads to their successor's (`addSnapshots`), so counters never go back when a worker is
 * replaced, and src/metrics/ turns them into Prometheus series.
 */

/** The OpenTelemetry messaging conventions' duration buckets, in seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Observations per bucket (not cumulative; the last entry is above the last bound), their sum in seconds. */
export interface HistogramData {
  counts: number[];
  sum: number;
}

export interface ThreadMetricsSnapshot {
  /** Messages handed to the handler (first attempts), by topic. */
  consumed: Record<string, number>;
  /** Handler attempts and how long each took, by topic. */
  process: Record<string, HistogramData>;
  /** Sends acknowledged, by topic. */
  sent: Record<string, number>;
  /** Send requests to the broker and how long each took until acknowledged, by topic. */
  send: Record<string, HistogramData>;
  /** Messages parked in `<topic>.dlq`, by `topic` + DEAD_LETTER_KEY_SEPARATOR + the error code (`none` without one). */
  deadLetters: Record<string, number>;
  /** Shared-state calls by operation (`map.set`, `counter.add`…). */
  stateCalls: Record<string, number>;
  /** How long shared-state calls took, all operations: one call in STATE_TIMING_EVERY is timed. */
  stateCallDuration: HistogramData;
}

export const DEAD_LETTER_KEY_SEPARATOR = '\u0000';

/**
 * Shared-state calls are counted each, but timed one in this many: a pipelined call costs ~1.5 µs,
 * and timing each (two clock reads and a callback on its promise) would add a tenth to that.
 */
export const STATE_TIMING_EVERY = 8;

export interface ThreadMetrics {
  consumed(topic: string): void;
  processed(topic: string, seconds: number): void;
  /** `count` messages to `topic` acknowledged by one request that took `seconds`. */
  sent(topic: string, count: number, seconds: number): void;
  deadLettered(topic: string, code: string | undefined): void;
  /** A shared-state call; `seconds` when it was timed. */
  stateCall(operation: string, seconds?: number): void;
  snapshot(): ThreadMetricsSnapshot;
}

export function emptyHistogram(): HistogramData {
  return { counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0 };
}

export function observe(histogram: HistogramData, seconds: number): void {
  let i = 0;
  while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
  histogram.counts[i]!++;
  histogram.sum += seconds;
}

export function createThreadMetrics(): ThreadMetrics {
  const consumed = new Map<string, number>();
  const sent = new Map<string, number>();
  const deadLetters = new Map<string, number>();
  const stateCalls = new Map<string, number>();
  const process = new Map<string, HistogramData>();
  const send = new Map<string, HistogramData>();
  const stateCallDuration = emptyHistogram();
  const histogram = (map: Map<string, HistogramData>, key: string) => {
    let found = map.get(key);
    if (!found) map.set(key, (found = emptyHistogram()));
    return found;
  };
  return {
    consumed: (topic) => void consumed.set(topic, (consumed.get(topic) ?? 0) + 1),
    processed: (topic, seconds) => observe(histogram(process, topic), seconds),
    sent(topic, count, seconds) {
      sent.set(topic, (sent.get(topic) ?? 0) + count);
      observe(histogram(send, topic), seconds);
    },
    deadLettered(topic, code) {
      const key = `${topic}${DEAD_LETTER_KEY_SEPARATOR}${code ?? 'none'}`;
      deadLetters.set(key, (deadLetters.get(key) ?? 0) + 1);
    },
    stateCall(operation, seconds) {
      stateCalls.set(operation, (stateCalls.get(operation) ?? 0) + 1);
      if (seconds !== undefined) observe(stateCallDuration, seconds);
    },
    snapshot: () => ({
      consumed: Object.fromEntries(consumed),
      process: copyHistograms(process),
      sent: Object.fromEntries(sent),
      send: copyHistograms(send),
      deadLetters: Object.fromEntries(deadLetters),
      stateCalls: Object.fromEntries(stateCalls),
      stateCallDuration: { counts: [...stateCallDuration.counts], sum: stateCallDuration.sum },
    }),
  };
}

function copyHistograms(map: Map<string, HistogramData>): Record<string, HistogramData> {
  const out: Record<string, HistogramData> = {};
  for (const [key, h] of map) out[key] = { counts: [...h.counts], sum: h.sum };
  return out;
}

export function emptySnapshot(): ThreadMetricsSnapshot {
  return { consumed: {}, process: {}, sent: {}, send: {}, deadLetters: {}, stateCalls: {}, stateCallDuration: emptyHistogram() };
}

/** a + b, series by series: what a slot's ended threads counted plus what its thread counts now. */
export function addSnapshots(a: ThreadMetricsSnapshot, b: ThreadMetricsSnapshot): ThreadMetricsSnapshot {
  return {
    consumed: addCounts(a.consumed, b.consumed),
    process: addHistogramMaps(a.process, b.process),
    sent: addCounts(a.sent, b.sent),
    send: addHistogramMaps(a.send, b.send),
    deadLetters: addCounts(a.deadLetters, b.deadLetters),
    stateCalls: addCounts(a.stateCalls, b.stateCalls),
    stateCallDuration: addHistograms(a.stateCallDuration, b.stateCallDuration),
  };
}

function addCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [key, n] of Object.entries(b)) out[key] = (out[key] ?? 0) + n;
  return out;
}

function addHistograms(a: HistogramData, b: HistogramData): HistogramData {
  return { counts: a.counts.map((n, i) => n + (b.counts[i] ?? 0)), sum: a.sum + b.sum };
}

function addHistogramMaps(a: Record<string, HistogramData>, b: Record<string, HistogramData>): Record<string, HistogramData> {
  const out = { ...a };
  for (const [key, h] of Object.entries(b)) out[key] = out[key] ? addHistograms(out[key], h) : h;
  return out;
}
