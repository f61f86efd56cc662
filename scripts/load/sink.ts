/**
 * What the benchmark's sink service (scripts/bench/sink-service.ts, run in wharf's workers) and
 * the benchmark reading it (bench-consume.ts, main thread) agree on. Kept apart so the worker
 * loads no more than it needs.
 */
export const HANDLED_COUNTER = 'bench.handled';
export const SINK_MODULE = 'scripts/bench/sink-service.js';
