import { describe, expect, it } from 'vitest';
import { HEADERS } from '../../src/kafka/codec.js';
import { DLQ_HEADERS } from '../../src/kafka/dead-letter.js';
import { formatTraceparent, newTraceparent, parseTraceparent } from '../../src/kafka/trace.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, startWharfForTest, uniqueName, waitFor } from '../helpers.js';

const str = (value: Buffer | string | (Buffer | string)[] | undefined) =>
  value === undefined ? undefined : String(Array.isArray(value) ? value[0] : value);

/** The pool-ctx service on a one-partition topic of its own, with a pool of one thread. */
async function onePoolThread(name: string) {
  const k = kafkaForTest();
  const admin = await k.admin();
  const input = await createTopic(admin, uniqueName(name), 1);
  const groupId = uniqueName(name);
  const wharf = await startWharfForTest({
    services: [
      {
        module: SERVICE_MODULES.fixture('pool-ctx'),
        consumes: { topics: [input], groupId, concurrency: { mode: 'unordered', threads: 1 } },
      },
    ],
  });
  return { k, admin, input, groupId, wharf };
}

describe('thread pool, the handler context', () => {
  it(
    'gives pool threads the same ctx: request, reply, send with the trace, state and locks, retries and dead letters',
    { timeout: 120_000 },
    async () => {
      const k = kafkaForTest();
      const admin = await k.admin();
      const [input, requests, out] = await Promise.all(
        ['pool-in', 'pool-requests', 'pool-out'].map((name) => createTopic(admin, uniqueName(name), 2)),
      );
      const supervisor = await startSupervisor({
        services: [
          // The responder answers from pool threads too (ctx.reply through a pool thread's own producer).
          {
            module: SERVICE_MODULES.fixture('responder'),
            consumes: { topics: [requests!], groupId: uniqueName('responder'), concurrency: { mode: 'unordered', threads: 2 } },
          },
          {
            module: SERVICE_MODULES.fixture('pool-ctx'),
            consumes: { topics: [input!], groupId: uniqueName('pool-ctx') },
            options: { responder: requests, out },
          },
        ],
      });
      const trace = newTraceparent();
      const producer = await k.producer();
      const message = (op: string, id: string) => ({
        key: id,
        value: JSON.stringify({ op, id }),
        headers: { [HEADERS.traceparent]: trace },
      });
      await producer.send({
        topic: input!,
        messages: [
          ...Array.from({ length: 10 }, (_, i) => message('request', `r${i}`)),
          ...Array.from({ length: 10 }, (_, i) => message('send', `s${i}`)),
          message('lock', 'l0'),
          message('fail', 'f0'),
          { key: 'bad', value: 'not json', headers: {} },
        ],
      });

      // Requests from pool threads are relayed to the worker's requester; every one got its own answer.
      const answers = await waitFor(
        () => {
          const value = (supervisor.store.get('pool.answers')?.value ?? {}) as Record<
            string,
            { id: string; by: string; traceparent: string }
          >;
          return Object.keys(value).length === 10 ? value : undefined;
        },
        { timeoutMs: 60_000, message: '10 answers' },
      );
      for (let i = 0; i < 10; i++) expect(answers[`r${i}`]).toMatchObject({ id: `r${i}`, by: 'responder/consumer/0' });
      // The request joined the inbound message's trace.
      expect(parseTraceparent(answers.r0!.traceparent)!.traceId).toBe(parseTraceparent(trace)!.traceId);

      // Sends from pool threads: acknowledged, keyed, a child of the inbound trace.
      const consumer = await k.consumer({ groupId: uniqueName('pool-out-reader') });
      await consumer.subscribe({ topics: [out!], fromBeginning: true });
      const sent: { key: string; id: string; traceparent: string }[] = [];
      await consumer.run({
        eachMessage: async ({ message: m }) =>
          void sent.push({
            key: m.key!.toString(),
            id: JSON.parse(m.value!.toString()).id,
            traceparent: str(m.headers?.[HEADERS.traceparent])!,
          }),
      });
      await waitFor(() => sent.length >= 10, { timeoutMs: 30_000, message: '10 sent messages' });
      expect(sent.map((s) => s.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `s${i}`).sort());
      for (const s of sent) {
        expect(s.key).toBe(s.id);
        const parsed = parseTraceparent(s.traceparent)!;
        expect(parsed.traceId).toBe(parseTraceparent(trace)!.traceId);
        expect(formatTraceparent(parsed)).not.toBe(trace);
      }

      // The thread that died holding a lock gave it back (its own state holder), and the retry took it.
      await waitFor(() => supervisor.store.get('pool.lock.taken')?.value === '2', {
        timeoutMs: 30_000,
        message: 'the lock taken by the retry',
      });
      const ctxs = (supervisor.store.get('pool.ctx')?.value ?? {}) as Record<
        string,
        { service: string; role: string; workerId: string; attempt: string; options: string[] }
      >;
      expect(ctxs.s0).toEqual({
        service: 'pool-ctx',
        role: 'consumer',
        workerId: 'pool-ctx/consumer/0',
        attempt: '1',
        options: ['out', 'responder'],
      });
      expect(ctxs.l0!.attempt).toBe('2');

      // A handler that always fails, and a value that is not JSON: parked like anywhere else.
      const dlq = await k.consumer({ groupId: uniqueName('pool-dlq-reader') });
      await dlq.subscribe({ topics: [`${input}.dlq`], fromBeginning: true });
      const parked: Record<string, string | undefined>[] = [];
      await dlq.run({
        eachMessage: async ({ message: m }) =>
          void parked.push({
            key: m.key?.toString(),
            attempts: str(m.headers?.[DLQ_HEADERS.attempts]),
            code: str(m.headers?.[DLQ_HEADERS.errorCode]),
            error: str(m.headers?.[DLQ_HEADERS.errorMessage]),
          }),
      });
      await waitFor(() => parked.length >= 2, { timeoutMs: 30_000, message: '2 dead letters' });
      expect(parked.sort((a, b) => a.key!.localeCompare(b.key!))).toEqual([
        { key: 'bad', attempts: '0', code: 'ERR_DECODE', error: expect.stringMatching(/not JSON/) },
        { key: 'f0', attempts: '2', code: undefined, error: 'op f0 always fails' },
      ]);

      const pool = supervisor.status().workers.find((w) => w.service === 'pool-ctx')!;
      expect(pool.restarts).toBe(0);
      await waitFor(() => supervisor.status().workers.find((w) => w.service === 'pool-ctx')!.pool?.threadExits === 1, {
        message: 'the pool to report the thread it lost',
      });
    },
  );

  it(
    'hands on what a dying thread held: the message it ran is retried, one it had finished stays done, the others run as attempt 1',
    { timeout: 120_000 },
    async () => {
      // One thread: the six messages reach it together, as two tasks of three (thread-pool.ts).
      const { k, input, wharf } = await onePoolThread('pool-held');
      const { supervisor } = wharf;
      const producer = await k.producer();
      const ids = ['n0', 'l0', ...Array.from({ length: 4 }, (_, i) => `n${i + 1}`)];
      await producer.send({
        topic: input,
        messages: ids.map((id) => ({ key: id, value: JSON.stringify({ op: id === 'l0' ? 'lock' : 'note', id }) })),
      });
      const ctxs = await waitFor(
        () => {
          const value = (supervisor.store.get('pool.ctx')?.value ?? {}) as Record<string, { attempt: string }>;
          return Object.keys(value).length === ids.length ? value : undefined;
        },
        { timeoutMs: 60_000, message: `${ids.length} messages handled` },
      );
      expect(Object.fromEntries(ids.map((id) => [id, ctxs[id]!.attempt]))).toEqual({
        n0: '1',
        l0: '2',
        n1: '1',
        n2: '1',
        n3: '1',
        n4: '1',
      });
      // n0 finished before its thread died with the answer: it is not run again.
      // Each handler appends to pool.runs after recording pool.ctx: wait for the last append.
      const runs = await waitFor(
        () => {
          const value = (supervisor.store.get('pool.runs')?.value ?? []) as string[];
          return value.length >= ids.length ? value : undefined;
        },
        { message: `${ids.length} runs recorded` },
      );
      expect(runs.filter((id) => id === 'n0')).toEqual(['n0']);
      expect([...runs].sort()).toEqual(['l0', 'n0', 'n1', 'n2', 'n3', 'n4']);
      await waitFor(() => supervisor.status().workers[0]!.pool?.threadExits === 1, { message: 'the pool to report the thread it lost' });
    },
  );

  it(
    'draining withdraws what a thread holds but has not begun: only the message running finishes and is committed',
    { timeout: 120_000 },
    async () => {
      const { k, admin, input, groupId, wharf } = await onePoolThread('pool-drain');
      const producer = await k.producer();
      await producer.send({
        topic: input,
        messages: Array.from({ length: 6 }, (_, i) => ({ key: `w${i}`, value: JSON.stringify({ op: 'slow', id: `w${i}`, ms: 1_000 }) })),
      });
      // The thread holds all six (two tasks of three) and runs the first.
      await waitFor(() => ((wharf.supervisor.store.get('pool.begun')?.value ?? []) as string[]).length > 0, {
        message: 'the first message begun',
      });
      await wharf.stop();
      expect(wharf.supervisor.store.get('pool.begun')?.value).toEqual(['w0']);
      expect(wharf.supervisor.store.get('pool.runs')?.value).toEqual(['w0']);
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] });
      expect(offsets!.partitions).toEqual([expect.objectContaining({ partition: 0, offset: '1' })]);
    },
  );
});
