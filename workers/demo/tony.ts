/**
 * Tony asks Jarvis numbered questions and records every answer in the shared conversation: each
 * producer tick is one `ctx.request` — the question goes out with Tony's reply topic and a
 * correlation id, and the tick resolves with Jarvis's answer. A question that gets no answer in
 * time (Jarvis down or being replaced) is asked again and counted in `duplicates`: the answer to
 * the earlier ask, should it still come, is dropped by wharf as late. One answer per question is
 * recorded, never two.
 */
import { isWharfError } from '../../src/errors.js';
import { defineService } from '../../src/service.js';
import { question, STATE, TOPICS, type Answer, type Exchange, type Question } from './conversation.js';

/** `options.requests` moves the conversation to another topic (tests do); `options.timeoutMs` bounds one wait for an answer. */
interface TonyOptions {
  requests?: string;
  timeoutMs?: number;
}

export default defineService<unknown, TonyOptions>({
  name: 'tony',
  producer: {
    defaultRate: 2,
    async tick(ctx) {
      const n = await ctx.state.counter(STATE.asked).add(1);
      const asked: Question = { n, text: question(n), askedAt: Date.now() };
      const topic = ctx.options.requests ?? TOPICS.requests;
      let answer: Answer | undefined;
      for (let attempt = 1; answer === undefined; attempt++) {
        const reply = ctx.request<Answer>(topic, asked, { key: String(n), timeoutMs: ctx.options.timeoutMs ?? 15_000 });
        // Counted once the first request is on its way, so `sent` is the number of questions.
        if (attempt === 1) await ctx.state.counter(STATE.sent).add(1);
        try {
          answer = await reply;
        } catch (error) {
          if (!isWharfError(error) || error.code !== 'ERR_TIMEOUT') throw error;
          // Stopping: asking again could wait for ever on a Jarvis that is gone too.
          if (ctx.signal.aborted) {
            ctx.log.warn({ n, attempt }, 'no answer from Jarvis in time, and stopping: not asking again');
            return;
          }
          ctx.log.warn({ n, attempt }, 'no answer from Jarvis in time; asking again');
          await ctx.state.counter(STATE.duplicates).add(1);
        }
      }
      const exchange: Exchange = { ...answer, recordedAt: Date.now() };
      if (await ctx.state.map<Exchange>(STATE.conversation).setIfAbsent(String(exchange.n), exchange))
        await ctx.state.counter(STATE.replied).add(1);
    },
  },
  observe({ watch, print }) {
    return watch(STATE.conversation, (change) => {
      const exchange = change.value as Exchange | undefined;
      if (change.op !== 'set' || !exchange) return;
      print(
        `#${exchange.n}  Tony: ${exchange.text}\n     Jarvis (${exchange.answeredBy}): ${exchange.reply}  [${exchange.recordedAt - exchange.askedAt} ms]`,
      );
    });
  },
});
