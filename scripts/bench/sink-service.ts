/**
 * The service the consume benchmarks run in wharf: it does nothing with a message (or, with
 * `options.hashIterations`, about 1 ms of hashing) and counts it in a shared-memory counter, which
 * the benchmark reads from the main thread without a message per count.
 */
import { defineService } from '../../src/service.js';
import { burnCpu } from '../load/cpu-work.js';
import { HANDLED_COUNTER } from '../load/sink.js';

export default defineService<unknown, { hashIterations?: number }>({
  name: 'bench-sink',
  consumes: { topics: ['bench.sink'] },
  async handler(_message, ctx) {
    if (ctx.options.hashIterations) burnCpu(ctx.options.hashIterations);
    await ctx.state.counter(HANDLED_COUNTER).add(1);
  },
});
