import { describe, expect, it } from 'vitest';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';

/** Tony asks, `answerer` (Jarvis or a test double) answers, on a 6-partition topic and a group of this test only. */
async function conversation(
  answerer: string,
  { answerers = 4, rate = 20, askTimeoutMs = 15_000, extra = [] as Record<string, unknown>[], supervisor = {} } = {},
) {
  const admin = await kafkaForTest().admin();
  const requests = await createTopic(admin, uniqueName('requests'), 6);
  return {
    services: [
      { module: answerer, workers: { consumer: answerers }, consumes: { topics: [requests], groupId: uniqueName('answerers') } },
      // Tony asks with ctx.request: the answers come back on his worker's own reply topic.
      // A question with no answer within askTimeoutMs is asked again and counted in `duplicates`.
      { module: SERVICE_MODULES.tony, workers: { producer: 1 }, rate, options: { requests, timeoutMs: askTimeoutMs } },
      ...extra,
    ],
    supervisor,
  };
}

type State = Awaited<ReturnType<typeof startSupervisor>>['store'];
const count = (store: State, name: string) => store.local.counter(name).get();

/** Stops Tony asking, then waits until every question sent has its answer recorded. */
async function everyQuestionAnswered(supervisor: Awaited<ReturnType<typeof startSupervisor>>) {
  await supervisor.scale('tony', 0, 'producer');
  const sent = await count(supervisor.store, 'sent');
  await waitFor(async () => (await count(supervisor.store, 'replied')) === sent, { timeoutMs: 60_000, message: `${sent} replies` });
  const conversation = supervisor.store.get('conversation')!.value as Record<string, { n: number }>;
  const numbers = Object.keys(conversation)
    .map(Number)
    .sort((a, b) => a - b);
  expect(numbers, 'one entry per question, for every question').toEqual(Array.from({ length: sent }, (_, i) => i + 1));
  return { sent, duplicates: await count(supervisor.store, 'duplicates') };
}

describe('supervisor', () => {
  it('runs the demo: 4 Jarvis workers ready, every question gets exactly one answer', async () => {
    const supervisor = await startSupervisor(await conversation(SERVICE_MODULES.jarvis, { answerers: 4 }));
    const status = supervisor.status();
    const jarvis = status.workers.filter((w) => w.service === 'jarvis');
    expect(jarvis).toHaveLength(4);
    expect(jarvis.every((w) => w.state === 'ready')).toBe(true);
    expect(status.services.map((s) => [s.name, s.health])).toEqual([
      ['jarvis', 'healthy'],
      ['tony', 'healthy'],
    ]);

    await waitFor(async () => (await count(supervisor.store, 'replied')) >= 40, { timeoutMs: 30_000, message: '40 exchanges' });
    const { sent } = await everyQuestionAnswered(supervisor);
    expect(sent).toBeGreaterThanOrEqual(40);
    // Workers report their counts with each heartbeat.
    await waitFor(() => supervisor.status().services.find((s) => s.name === 'jarvis')!.handled >= sent, {
      message: 'Jarvis to report what it handled',
    });
  });

  it(
    'replaces a killed worker, one that throws uncaught, and one that blocks its event loop, losing nothing',
    { timeout: 180_000 },
    async () => {
      // Each fault holds up the questions of its worker's partitions for at most the heartbeat
      // timeout (3 s) plus the session timeout (6 s) and a rebalance: well within 30 s.
      const supervisor = await startSupervisor(
        await conversation(SERVICE_MODULES.fixture('answerer'), { answerers: 2, rate: 30, askTimeoutMs: 30_000 }),
      );
      const restarted = (workerId?: string) =>
        supervisor.events.once('worker:ready', (p) => p.service === 'answerer' && p.restarts > 0 && (!workerId || p.workerId === workerId));
      const progress = async () => {
        const target = (await count(supervisor.store, 'replied')) + 20;
        await waitFor(async () => (await count(supervisor.store, 'replied')) >= target, {
          timeoutMs: 60_000,
          message: 'the conversation to go on',
        });
      };
      await progress();

      // 1. The thread terminated from outside.
      let back = restarted('answerer/consumer/0');
      await supervisor.kill('answerer/consumer/0');
      await back;
      await progress();

      // 2. A handler that throws outside its promise: an uncaught exception ends the thread.
      back = restarted();
      await supervisor.store.local.value('fault').set('throw-uncaught');
      const crashed = await supervisor.events.once('worker:crashed', (p) => p.service === 'answerer');
      expect(crashed.reason).toMatch(/injected uncaught error/);
      await back;
      await progress();

      // 3. A handler that never returns: no heartbeats, replaced after heartbeatTimeoutMs.
      back = restarted();
      await supervisor.store.local.value('fault').set('block');
      const blocked = await supervisor.events.once('worker:crashed', (p) => p.service === 'answerer');
      expect(blocked.reason).toMatch(/unresponsive: no heartbeat/);
      await back;

      const { duplicates } = await everyQuestionAnswered(supervisor);
      const answerer = supervisor.status().services.find((s) => s.name === 'answerer')!;
      expect(answerer.restarts).toBeGreaterThanOrEqual(3);
      expect(answerer.health).toBe('healthy');
      // Redelivered questions are answered again, and the late answers dropped (never recorded
      // twice: the conversation check above); no question waited so long that Tony asked it again.
      expect(duplicates, 'questions asked again after 30 s without an answer').toBe(0);
    },
  );

  it('lets a worker failing with an uncaught error leave its consumer group before it exits', { timeout: 90_000 }, async () => {
    // One answerer, replaced only after 8 s: long enough to see whether the group still holds the
    // failed member (it would until the broker expires it, a 6 s session timeout later) or not.
    const setup = await conversation(SERVICE_MODULES.fixture('answerer'), {
      answerers: 1,
      supervisor: { restart: { initialDelayMs: 8_000, maxDelayMs: 8_000 } },
    });
    const supervisor = await startSupervisor(setup);
    const groupId = (setup.services[0]!.consumes as { groupId: string }).groupId;
    const admin = await kafkaForTest().admin();
    const members = async () => (await admin.describeGroups([groupId])).groups[0]!.members.length;
    expect(await members()).toBe(1);
    const crashed = supervisor.events.once('worker:crashed', (p) => p.service === 'answerer');
    await supervisor.store.local.value('fault').set('throw-uncaught');
    expect((await crashed).reason).toMatch(/injected uncaught error/);
    await waitFor(async () => (await members()) === 0, { timeoutMs: 4_000, message: 'the failed member to have left the group' });
    await supervisor.events.once('worker:ready', (p) => p.service === 'answerer' && p.restarts > 0);
    await waitFor(async () => (await members()) === 1, { message: 'the replacement in the group' });
    await everyQuestionAnswered(supervisor);
  });

  it('gives up on a crash-looping service while the others keep working', { timeout: 120_000 }, async () => {
    const supervisor = await startSupervisor(
      await conversation(SERVICE_MODULES.jarvis, {
        answerers: 1,
        extra: [{ module: SERVICE_MODULES.fixture('crasher'), workers: { producer: 1 } }],
        supervisor: { restart: { initialDelayMs: 20, maxDelayMs: 100, maxRestarts: 3, windowMs: 60_000 } },
      }),
    );
    const crasher = await waitFor(() => supervisor.status().services.find((s) => s.name === 'crasher' && s.health === 'failed'), {
      message: 'the crasher to be given up on',
    });
    expect(crasher.reason).toMatch(/crashed 4 times within 60000 ms \(limit 3 restarts\)/);
    expect(crasher.reason).toMatch(/crasher always fails/);
    expect(crasher.restarts).toBe(3);

    const before = await count(supervisor.store, 'replied');
    await waitFor(async () => (await count(supervisor.store, 'replied')) >= before + 10, { message: 'the demo to go on' });
    expect(
      supervisor
        .status()
        .services.filter((s) => s.name !== 'crasher')
        .every((s) => s.health === 'healthy'),
    ).toBe(true);
  });

  it('treats an out-of-memory exit as a crash', async () => {
    const supervisor = await startSupervisor({
      services: [{ module: SERVICE_MODULES.fixture('hog'), workers: { producer: 1 } }],
      supervisor: {
        resourceLimits: { maxOldGenerationSizeMb: 32 },
        restart: { initialDelayMs: 10, maxDelayMs: 10, maxRestarts: 0, windowMs: 60_000 },
      },
    });
    const hog = await waitFor(() => supervisor.status().services.find((s) => s.health === 'failed'), { message: 'the hog to fail' });
    expect(hog.reason).toMatch(/out of memory \(heap limit 32 MB\)/);
  });

  it('names the workers that did not drain within the drain timeout', async () => {
    const admin = await kafkaForTest().admin();
    const topic = await createTopic(admin, uniqueName('slow'), 1);
    const supervisor = await startSupervisor({
      services: [
        {
          module: SERVICE_MODULES.fixture('slow'),
          consumes: { topics: [topic], groupId: uniqueName('slow') },
          options: { holdMs: 60_000 },
        },
      ],
      supervisor: { drainTimeoutMs: 1_000 },
    });
    const producer = await kafkaForTest().producer();
    await producer.send({ topic, messages: [{ value: JSON.stringify({ hold: true }) }] });
    await waitFor(async () => (await supervisor.store.local.value('started').get()) !== undefined, {
      message: 'the slow handler to start',
    });

    const began = Date.now();
    const result = await supervisor.stop();
    expect(result).toEqual({ ok: false, unfinished: ['slow/consumer/0'] });
    expect(Date.now() - began).toBeLessThan(10_000);
    expect(supervisor.status().workers.map((w) => [w.state, w.threadId])).toEqual([['stopped', null]]);
  });
});
