/**
 * The built-in echo service: answers every request with the request itself, on the topic its
 * `reply-to` header names. It is the smallest service that does a full request/reply round trip
 * (decode, handler, acknowledged send), so `npm run load -- --service echo` measures wharf and the
 * broker rather than a handler.
 */
import { defineService } from '../src/service.js';

export default defineService({
  name: 'echo',
  topics: [{ topic: 'echo.requests', numPartitions: 6 }],
  consumes: { topics: ['echo.requests'] },
  async handler(message, ctx) {
    await ctx.reply(message.value);
  },
});
