/** Jarvis answers every question Tony asks, on the reply topic Tony named. */
import { defineService } from '../../src/service.js';
import { answer, TOPICS, type Answer, type Question } from './conversation.js';

export default defineService<Question>({
  name: 'jarvis',
  topics: [{ topic: TOPICS.requests, numPartitions: 6 }],
  consumes: { topics: [TOPICS.requests] },
  async handler(message, ctx) {
    const reply: Answer = { ...message.value, reply: answer(message.value.text), answeredBy: ctx.workerId };
    await ctx.reply(reply);
  },
});
