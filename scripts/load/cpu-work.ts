import { createHash } from 'node:crypto';

/**
 * A CPU-bound handler's work, the same in wharf's workers and in the bare kafkajs baseline:
 * chained SHA-256 over a small buffer. It holds the thread the whole time (no I/O, no await), as
 * parsing, validating or scoring a message does.
 */
const SEED = Buffer.alloc(64, 7);

export function burnCpu(iterations: number): Buffer {
  let digest = SEED;
  for (let i = 0; i < iterations; i++) digest = createHash('sha256').update(digest).digest();
  return digest;
}

/**
 * Iterations that take about `targetMs` on this machine now: the median of several timed runs,
 * so a burst of load elsewhere during calibration skews it less.
 */
export function calibrateCpuWork(targetMs = 1, samples = 7): { iterations: number; msPerCall: number } {
  const probe = 2_000;
  burnCpu(probe); // warm up the JIT and OpenSSL
  const perIteration: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    burnCpu(probe);
    perIteration.push((performance.now() - started) / probe);
  }
  perIteration.sort((a, b) => a - b);
  const median = perIteration[Math.floor(samples / 2)]!;
  const iterations = Math.max(1, Math.round(targetMs / median));
  return { iterations, msPerCall: Math.round(iterations * median * 1_000) / 1_000 };
}
