/**
 * The service the failover benchmark (supervisor-startup.ts) runs: it answers nothing, and when
 * the shared value "fault" is "throw" the first worker to see it clears it and throws outside its
 * handler's promise — an uncaught error that ends the worker thread.
 */
import { defineService } from '../../src/service.js';

export default defineService({
  name: 'faulty',
  consumes: { topics: ['bench.faulty'] },
  async handler(_message, ctx) {
    const fault = ctx.state.value<string | null>('fault');
    if ((await fault.get()) === 'throw' && (await fault.compareAndSet('throw', null))) {
      setImmediate(() => {
        throw new Error('injected uncaught error');
      });
    }
  },
});
