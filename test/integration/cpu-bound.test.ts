import { describe, expect, it } from 'vitest';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';
import { produce } from './messaging-helpers.js';

describe('a CPU-bound handler with a backlog', () => {
  it('keeps its worker heartbeating and its group member alive: no restart, no rebalance, nothing twice', { timeout: 90_000 }, async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('busy'), 2);
    const N = 800;
    // 800 × 10 ms = 8 s of handlers, all fetched at once: more than the supervisor's heartbeat
    // timeout (3 s here) and the group's session timeout (6 s), were the thread held throughout.
    await produce(
      await k.producer(),
      topic,
      Array.from({ length: N }, (_, i) => ({ key: `k${i % 16}`, value: JSON.stringify({ i }) })),
    );
    const supervisor = await startSupervisor({
      services: [
        {
          module: SERVICE_MODULES.fixture('busy'),
          workers: { consumer: 1 },
          consumes: { topics: [topic], groupId: uniqueName('busy') },
          options: { busyMs: 10 },
        },
      ],
      kafka: { clientId: uniqueName('wharf') },
    });
    const handled = () => Object.keys((supervisor.store.get('handled')?.value ?? {}) as object).length;
    await waitFor(() => handled() === N, { timeoutMs: 60_000, message: `${N} handled` });
    const [worker] = supervisor.status().workers;
    expect(worker).toMatchObject({ state: 'ready', restarts: 0 });
    expect(await supervisor.store.local.counter('duplicates').get()).toBe(0);
    expect((supervisor.store.get('wharf.delivery')?.value as Record<string, { rebalances: number }>)[worker!.workerId]!.rebalances).toBe(1);
  });
});
