import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS } from '../../src/kafka/dead-letter.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';
import { TOPIC_NAME_RULE } from '../../src/kafka/topic-name.js';
import { deliveryTotals, produce, readAll } from './messaging-helpers.js';

describe('a send the handler did not await', () => {
  it('still belongs to its message: acknowledged before the commit, and a failure parks the message', { timeout: 90_000 }, async () => {
    const k = kafkaForTest();
    const admin = await k.admin();
    const topic = await createTopic(admin, uniqueName('forgetful'), 2);
    const target = await createTopic(admin, uniqueName('forwarded'), 2);
    const N = 500;
    const every = 50;
    const supervisor = await startSupervisor({
      services: [
        {
          module: SERVICE_MODULES.fixture('forgetful'),
          workers: { consumer: 1 },
          consumes: { topics: [topic], groupId: uniqueName('forgetful'), retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 } },
          // Kafka refuses topic names with spaces: every send there fails for good.
          options: { target, unwritable: 'no spaces allowed here', every },
        },
      ],
      kafka: { clientId: uniqueName('wharf') },
    });
    await produce(
      await k.producer(),
      topic,
      Array.from({ length: N }, (_, i) => ({ key: `k${i % 7}`, value: JSON.stringify({ i }) })),
      100,
    );

    const refused = N / every;
    const dead = await readAll(`${topic}.dlq`, refused);
    expect(dead.map((d) => (JSON.parse(d.value!.toString()) as { i: number }).i).sort((a, b) => a - b)).toEqual(
      Array.from({ length: refused }, (_, n) => n * every),
    );
    expect(
      dead.every(
        (d) =>
          d.headers[DLQ_HEADERS.errorMessage] ===
          `Cannot send to "no spaces allowed here": not a valid Kafka topic name (${TOPIC_NAME_RULE}).`,
      ),
    ).toBe(true);
    const forwarded = await readAll(target, N - refused);
    expect(new Set(forwarded.map((f) => (JSON.parse(f.value!.toString()) as { i: number }).i)).size).toBe(N - refused);
    await waitFor(() => deliveryTotals(supervisor.store).handled + deliveryTotals(supervisor.store).deadLettered >= N, {
      message: 'every message finished',
    });
    expect(deliveryTotals(supervisor.store)).toMatchObject({ handled: N - refused, deadLettered: refused });
    expect(supervisor.status().workers.map((w) => [w.state, w.restarts])).toEqual([['ready', 0]]);
  });
});
