/**
 * Tony asks Jarvis numbered questions (his producer role) and records every answer in the shared
 * conversation (his consumer role). An answer that arrives twice — at-least-once delivery after a
 * crash — is counted as a duplicate, never recorded twice.
 */
import { defineService } from '../../src/service.js';
import { question, STATE, TOPICS, type Answer, type Exchange, type Question } from './conversation.js';

/** `options.requests` / `options.replies` move the conversation to other topics (tests do). */
interface TonyOptions {
  requests?: string;
  replies?: string;
}

export default defineService<Answer, TonyOptions>({
  name: 'tony',
  topics: [{ topic: TOPICS.replies, numPartitions: 6 }],
  producer: {
    defaultRate: 2,
    async tick(ctx) {
      const n = await ctx.state.counter(STATE.asked).add(1);
      const asked: Question = { n, text: question(n), askedAt: Date.now() };
      await ctx.send(ctx.options.requests ?? TOPICS.requests, asked, {
        key: String(n),
        headers: { 'reply-to': ctx.options.replies ?? TOPICS.replies, 'correlation-id': `tony-${n}` },
      });
      await ctx.state.counter(STATE.sent).add(1);
    },
  },
  consumes: { topics: [TOPICS.replies] },
  async handler(message, ctx) {
    const exchange: Exchange = { ...message.value, recordedAt: Date.now() };
    const fresh = await ctx.state.map<Exchange>(STATE.conversation).setIfAbsent(String(exchange.n), exchange);
    await ctx.state.counter(fresh ? STATE.replied : STATE.duplicates).add(1);
  },
  observe({ watch, print }) {
    return watch(STATE.conversation, (change) => {
      const exchange = change.value as Exchange | undefined;
      if (change.op !== 'set' || !exchange) return;
      print(`#${exchange.n}  Tony: ${exchange.text}\n     Jarvis (${exchange.answeredBy}): ${exchange.reply}  [${exchange.recordedAt - exchange.askedAt} ms]`);
    });
  },
});
