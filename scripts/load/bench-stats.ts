/**
 * Repetitions for benchmarks on a noisy machine: the compared variants take turns within each
 * repetition, in an order that rotates from one repetition to the next, so a burst of load from
 * elsewhere (or a warming broker) falls on all of them rather than on whichever ran last; then
 * each variant is summarised by its median, with the spread kept so readers can judge the noise.
 */
export interface Sampled {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function sampled(values: readonly number[]): Sampled {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), samples: [...values] };
}

/** `items` rotated left by `by`: rep 0 runs a, b, c; rep 1 runs b, c, a; … */
export function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export interface InterleaveOptions<R> {
  onRun?: (name: string, rep: number, result: R) => void;
  /**
   * Rounds of every variant run first and not counted (reported to `onRun` with rep -1). Whatever
   * a run's first measure pays for (a broker whose JVM has not yet compiled the paths of a large
   * drain, caches still empty), rotation would give it to the first variant of rep 0 alone.
   */
  warmupRounds?: number;
}

/** Runs every variant once per repetition, interleaved and rotated; returns each one's results in run order. */
export async function interleave<R>(
  variants: Record<string, () => Promise<R>>,
  reps: number,
  { onRun, warmupRounds = 0 }: InterleaveOptions<R> = {},
): Promise<Record<string, R[]>> {
  const names = Object.keys(variants);
  for (let round = 0; round < warmupRounds; round++) for (const name of names) onRun?.(name, -1, await variants[name]!());
  const results: Record<string, R[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const name of rotate(names, rep)) {
      const result = await variants[name]!();
      results[name]!.push(result);
      onRun?.(name, rep, result);
    }
  }
  return results;
}

/**
 * a ÷ b to three decimals: targets are checked against this figure, and at two decimals 0.8993
 * read as 0.90, a target of 0.9 met by rounding.
 */
export function ratio(a: number, b: number): number | null {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;
}
