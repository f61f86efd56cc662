import type { Logger } from '../../src/log.js';
import { median } from './bench-stats.js';
import { runLoad } from './run.js';
import type { LoadTarget } from './target.js';

/**
 * Capacity as a user sees it: requests of `size` bytes sent at a fixed rate through Jarvis (or
 * the bare kafkajs responder), the rate stepped up until the p99 of the end-to-end latency
 * reaches `p99LimitMs` (or a request is lost). A step over the limit is measured once more before
 * the ladder stops: at a few hundred requests a second the p99 of a 6-second step is its 20th-odd
 * slowest answer, and a single pause of the broker or of a thread moves it past 50 ms on a machine
 * where both share two cores. A responder's capacity is the highest step that stayed under;
 * ladders are repeated, the responders taking turns, and the median reported.
 */
export interface CapacityStep {
  rate: number;
  answeredPerSec: number;
  p99: number | null;
  lost: number;
  ok: boolean;
  /** The second measure of a rate whose first went over the limit. */
  again?: boolean;
}

export interface CapacitySide {
  /** Highest rate with p99 under the limit, median over the ladders (0: not even the first step). */
  highestRate: number;
  ladders: { highestRate: number; steps: CapacityStep[] }[];
}

export interface CapacitySettings {
  brokers: string[];
  target: LoadTarget;
  rates: readonly number[];
  stepMs: number;
  warmupMs: number;
  size: number;
  p99LimitMs: number;
  logger: Logger;
  serviceLogger: Logger;
  say(line: string): void;
}

export async function climbLadder(
  s: CapacitySettings,
  responder: 'wharf' | 'kafkajs',
): Promise<{ highestRate: number; steps: CapacityStep[] }> {
  const step = async (rate: number, again: boolean): Promise<CapacityStep> => {
    const r = await runLoad({
      brokers: s.brokers,
      target: s.target,
      workers: 1,
      partitions: 6,
      limit: { durationMs: s.stepMs },
      rate,
      maxInFlight: null,
      size: s.size,
      keys: 100,
      logger: s.logger,
      serviceLogger: s.serviceLogger,
      responder,
      warmupMs: s.warmupMs,
      settleTimeoutMs: 10_000,
    });
    const p99 = r.latencyMs.p99;
    const ok = r.lost === 0 && p99 !== null && p99 < s.p99LimitMs;
    s.say(
      `capacity ${responder} ${rate}/s${again ? ' again' : ''}: answered ${r.throughput.answeredPerSec}/s, p99 ${p99} ms, lost ${r.lost} — ${ok ? 'under' : 'over'} ${s.p99LimitMs} ms`,
    );
    return { rate, answeredPerSec: r.throughput.answeredPerSec, p99, lost: r.lost, ok, ...(again ? { again } : {}) };
  };
  return climb(s.rates, step);
}

/**
 * The ladder itself: each rate measured in turn, one over the limit measured again (a lost
 * request is not noise: it ends the ladder at once), up to the first rate that fails twice.
 */
export async function climb(
  rates: readonly number[],
  measure: (rate: number, again: boolean) => Promise<CapacityStep>,
): Promise<{ highestRate: number; steps: CapacityStep[] }> {
  const steps: CapacityStep[] = [];
  let highestRate = 0;
  for (const rate of rates) {
    let result = await measure(rate, false);
    steps.push(result);
    if (!result.ok && result.lost === 0) steps.push((result = await measure(rate, true)));
    if (!result.ok) break;
    highestRate = rate;
  }
  return { highestRate, steps };
}

export const summarizeCapacity = (ladders: CapacitySide['ladders']): CapacitySide => ({
  highestRate: median(ladders.map((l) => l.highestRate)),
  ladders,
});
