import { describe, expect, it } from 'vitest';
import { climb, type CapacityStep } from '../../scripts/load/bench-capacity.js';
import { checkRequestSize, largestRequestSize } from '../../scripts/load/broker-limits.js';
import { interleave, median, ratio, rotate } from '../../scripts/load/bench-stats.js';
import { createLatencyHistogram, recordLatencyMs, summarizeLatency } from '../../scripts/load/latency.js';
import { createLedger } from '../../scripts/load/ledger.js';
import { correlatedSeq, encodeRequest, MIN_REQUEST_BYTES, requestKey } from '../../scripts/load/request.js';
import { createTimeline } from '../../scripts/load/timeline.js';

describe('latency summary (HDR histogram)', () => {
  it('gives percentiles within 0.1 % of the exact ones', () => {
    const h = createLatencyHistogram();
    // 1 … 10,000 ms in a shuffled order: exact p50 = 5,000, p90 = 9,000, p99 = 9,900, p99.9 = 9,990.
    const values = Array.from({ length: 10_000 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    for (const v of values) recordLatencyMs(h, v);
    const s = summarizeLatency(h);
    expect(s.count).toBe(10_000);
    for (const [got, exact] of [
      [s.p50, 5_000],
      [s.p90, 9_000],
      [s.p99, 9_900],
      [s.p999, 9_990],
      [s.max, 10_000],
      [s.min, 1],
      [s.mean, 5_000.5],
    ] as const) {
      expect(Math.abs(got! - exact) / exact, `${got} vs ${exact}`).toBeLessThan(0.001);
    }
    expect(s.p50! <= s.p90! && s.p90! <= s.p99! && s.p99! <= s.p999! && s.p999! <= s.max!).toBe(true);
  });

  it('keeps sub-millisecond latencies to the microsecond', () => {
    const h = createLatencyHistogram();
    for (let i = 0; i < 99; i++) recordLatencyMs(h, 0.25);
    recordLatencyMs(h, 40);
    const s = summarizeLatency(h);
    expect(s.p50).toBeCloseTo(0.25, 3);
    expect(s.p99).toBeCloseTo(0.25, 3);
    expect(s.max).toBeCloseTo(40, 1);
  });

  it('never reports a percentile above the largest value recorded', () => {
    const h = createLatencyHistogram();
    // 2,756.21 ms falls in a bucket whose top is higher: p99.9 must still be ≤ max.
    for (let i = 0; i < 10; i++) recordLatencyMs(h, 2_756.21);
    const s = summarizeLatency(h);
    expect(s.p999).toBeLessThanOrEqual(s.max!);
    expect(s.max).toBe(2_756.21);
  });

  it('reports nulls, not zeros, when nothing was recorded', () => {
    expect(summarizeLatency(createLatencyHistogram())).toEqual({
      count: 0,
      min: null,
      mean: null,
      p50: null,
      p90: null,
      p99: null,
      p999: null,
      max: null,
    });
  });
});

describe('timeline', () => {
  it('closes intervals with their own counts and percentiles, and keeps the whole run apart', () => {
    const timeline = createTimeline();
    timeline.begin(1_000);
    timeline.recordSent(3);
    for (const ms of [1, 2, 3]) timeline.recordAnswer(ms, 1_000);
    const first = timeline.close(2_000, 0, 5);
    timeline.recordSent(1);
    timeline.recordAnswer(100, 2_000);
    const second = timeline.close(3_000, 0, null);
    expect(first).toMatchObject({ t: 1, sent: 3, answered: 3, lag: 5 });
    expect(first.max).toBeCloseTo(3, 1);
    expect(second).toMatchObject({ t: 2, sent: 1, answered: 1, lag: null });
    expect(second.p50).toBeCloseTo(100, 0);
    expect(timeline.summary().count).toBe(4);
    expect(timeline.summary().max).toBeCloseTo(100, 0);
  });

  it("leaves requests due during the warm-up out of the run's percentiles, not out of its intervals", () => {
    const timeline = createTimeline({ warmupMs: 500 });
    timeline.begin(1_000);
    timeline.recordAnswer(900, 1_100); // due in the warm-up: slow, and left out
    timeline.recordAnswer(5, 1_499.9);
    timeline.recordAnswer(7, 1_500); // due as the warm-up ends: counted
    timeline.recordAnswer(3, 1_800);
    expect(timeline.close(2_000, 0, null)).toMatchObject({ answered: 4 });
    expect(timeline.points[0]!.max).toBeCloseTo(900, 0);
    expect(timeline.summary()).toMatchObject({ count: 2 });
    expect(timeline.summary().max).toBeCloseTo(7, 1);
  });
});

describe('ledger: lost and duplicated requests', () => {
  it('counts a second reply as a duplicate and an unanswered acknowledged request as lost', () => {
    const ledger = createLedger(4);
    for (let seq = 0; seq < 5; seq++) ledger.sent(seq, seq * 10);
    for (let seq = 0; seq < 5; seq++) ledger.acked(seq);
    expect(ledger.answered(0)).toEqual({ outcome: 'first', dueAt: 0 });
    expect(ledger.answered(0).outcome).toBe('duplicate');
    expect(ledger.answered(2)).toEqual({ outcome: 'first', dueAt: 20 });
    expect(ledger.deadLettered(3)).toBe('first');
    expect(ledger.answered(99).outcome).toBe('unknown');
    expect(ledger.answered(NaN).outcome).toBe('unknown');
    expect(ledger.unanswered()).toEqual([1, 4]);
    expect(ledger.counts).toMatchObject({ sent: 5, acked: 5, answered: 2, duplicates: 1, deadLettered: 1, unknown: 2 });
  });

  it('lets a reply overtake its acknowledgement, and grows past its first capacity', () => {
    const ledger = createLedger(1);
    for (let seq = 0; seq < 5_000; seq++) ledger.sent(seq, seq);
    for (let seq = 0; seq < 5_000; seq++) ledger.answered(seq);
    for (let seq = 0; seq < 5_000; seq++) ledger.acked(seq);
    expect(ledger.unanswered()).toEqual([]);
    expect(ledger.answered(4_999)).toEqual({ outcome: 'duplicate', dueAt: 4_999 });
  });

  it('does not count a failed send as lost', () => {
    const ledger = createLedger();
    ledger.sent(0, 0);
    ledger.failed(0);
    expect(ledger.unanswered()).toEqual([]);
    expect(ledger.counts.sendErrors).toBe(1);
  });
});

describe('requests', () => {
  it('are JSON of exactly --size bytes carrying id and due time', () => {
    for (const size of [MIN_REQUEST_BYTES, 1_000, 100_000]) {
      const text = encodeRequest(123_456_789, 1_764_000_000_123.457, size);
      expect(Buffer.byteLength(text)).toBe(size);
      expect(JSON.parse(text)).toMatchObject({
        id: 123_456_789,
        n: 123_456_789,
        sentAt: 1_764_000_000_123.457,
        text: 'load request #123456789',
      });
    }
  });

  it('spread over --keys keys, or none', () => {
    expect(new Set(Array.from({ length: 100 }, (_, i) => requestKey(i, 7))).size).toBe(7);
    expect(requestKey(5, 0)).toBeNull();
  });

  it('are matched to replies by a numeric correlation id only', () => {
    expect(correlatedSeq(Buffer.from('42'))).toBe(42);
    expect(correlatedSeq(['7'])).toBe(7);
    expect(correlatedSeq('tony-3')).toBeNaN();
    expect(correlatedSeq(undefined)).toBeNaN();
  });
});

describe("the broker's size limit", () => {
  it('refuses a size over it in one line that names the setting and the largest size allowed', () => {
    const limit = { bytes: 1_048_588, source: 'message.max.bytes on broker 1' };
    expect(() => checkRequestSize(largestRequestSize(limit), limit)).not.toThrow();
    expect(() => checkRequestSize(2_000_000, limit)).toThrow(
      /--size 2000000 is over the broker's limit: .* at most 1048588 bytes \(message\.max\.bytes on broker 1\).* Use --size 1047564 or less/,
    );
  });
});

describe('benchmark repetitions', () => {
  it('rotate the order of variants from one repetition to the next', async () => {
    const order: string[] = [];
    const runs = await interleave({ a: async () => order.push('a'), b: async () => order.push('b'), c: async () => order.push('c') }, 3);
    expect(order.join('')).toBe('abcbcacab');
    expect(Object.values(runs).map((r) => r.length)).toEqual([3, 3, 3]);
    expect(rotate([1, 2, 3], 4)).toEqual([2, 3, 1]);
  });

  it('run warm-up rounds first and leave them out of the results', async () => {
    let calls = 0;
    const seen: string[] = [];
    const runs = await interleave({ a: async () => ++calls, b: async () => ++calls }, 2, {
      warmupRounds: 1,
      onRun: (name, rep, result) => seen.push(`${name}${rep}:${result}`),
    });
    expect(seen).toEqual(['a-1:1', 'b-1:2', 'a0:3', 'b0:4', 'b1:5', 'a1:6']);
    expect(runs).toEqual({ a: [3, 6], b: [4, 5] });
  });

  it('summarise by the median', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('measure a capacity step over the limit once more, and end the ladder at the first that fails twice or loses a request', async () => {
    // p99 by rate and try: 300/s is over once (noise), 500/s twice (the knee).
    const p99s: Record<number, number[]> = { 100: [10], 300: [70, 30], 400: [40], 500: [60, 80], 650: [20] };
    const tries = new Map<number, number>();
    const measure = async (rate: number, again: boolean): Promise<CapacityStep> => {
      const n = tries.get(rate) ?? 0;
      tries.set(rate, n + 1);
      expect(again).toBe(n === 1);
      const p99 = p99s[rate]![n]!;
      return { rate, answeredPerSec: rate, p99, lost: 0, ok: p99 < 50 };
    };
    const ladder = await climb([100, 300, 400, 500, 650], measure);
    expect(ladder.highestRate).toBe(400);
    expect(ladder.steps.map((s) => `${s.rate}:${s.p99}`)).toEqual(['100:10', '300:70', '300:30', '400:40', '500:60', '500:80']);
    expect(tries.has(650)).toBe(false);

    const lossy = await climb([100, 200], async (rate) => ({
      rate,
      answeredPerSec: rate,
      p99: 5,
      lost: rate === 200 ? 1 : 0,
      ok: rate !== 200,
    }));
    expect(lossy.highestRate).toBe(100);
    expect(lossy.steps).toHaveLength(2);
  });

  it('keep three decimals in a ratio, so no target is met by rounding', () => {
    // A full run's pool against its ceiling: 0.8993 once read 0.90, "met (≥ 0.9×)".
    expect(ratio(1_803, 2_005)).toBe(0.899);
    expect(ratio(1, 0)).toBeNull();
  });
});
