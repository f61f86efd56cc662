import { describe, expect, it } from 'vitest';
import { producerConfig } from '../../src/kafka/client.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, startSupervisor, uniqueName, waitFor } from '../helpers.js';

/**
 * The thread pool keeps order per key while handlers finish out of order: 20,000 messages over
 * 200 keys on 2 partitions, a handler with 0–2 ms of CPU work on 4 pool threads, each handling
 * recorded in a shared list per key from the pool thread (through its own state port).
 */
const KEYS = 200;
const MESSAGES = 20_000;

type Supervisor = Awaited<ReturnType<typeof startSupervisor>>;

async function backlog() {
  const k = kafkaForTest();
  const admin = await k.admin();
  const topic = await createTopic(admin, uniqueName('pool-order'), 2);
  const producer = await k.producer(producerConfig());
  for (let start = 0; start < MESSAGES; start += 1_000) {
    const messages = Array.from({ length: 1_000 }, (_, i) => start + i).map((n) => ({
      key: `k${n % KEYS}`,
      value: JSON.stringify({ n, seq: Math.floor(n / KEYS) }),
    }));
    await producer.send({ topic, acks: -1, messages });
  }
  return { admin, topic, groupId: uniqueName('pool-order') };
}

async function runPool(topic: string, groupId: string, options: Record<string, unknown> = {}) {
  return startSupervisor({
    services: [
      {
        module: SERVICE_MODULES.fixture('pool-order'),
        // The definition asks for 2 threads; the config's override wins.
        consumes: { topics: [topic], groupId, concurrency: { mode: 'key', threads: 4, maxInFlight: 2_000 } },
        options,
      },
    ],
  });
}

/** Every key's recorded sequence; consecutive repeats (a retried message recorded twice) counted as duplicates. */
function orders(supervisor: Supervisor) {
  let duplicates = 0;
  let recorded = 0;
  const byKey = new Map<string, number[]>();
  for (let k = 0; k < KEYS; k++) {
    const list = (supervisor.store.get(`order:k${k}`)?.value ?? []) as number[];
    recorded += list.length;
    const distinct = list.filter((seq, i) => i === 0 || seq !== list[i - 1]);
    duplicates += list.length - distinct.length;
    byKey.set(`k${k}`, distinct);
  }
  return { byKey, duplicates, recorded };
}

async function everythingCommitted(admin: Awaited<ReturnType<ReturnType<typeof kafkaForTest>['admin']>>, topic: string, groupId: string) {
  const high = await admin.fetchTopicOffsets(topic);
  await waitFor(
    async () => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return high.every((p) => committed!.partitions.find((c) => c.partition === p.partition)?.offset === p.high);
    },
    { timeoutMs: 30_000, message: 'the group to commit every offset' },
  );
}

const inOrder = Array.from({ length: MESSAGES / KEYS }, (_, i) => i);

describe('thread pool, key order', () => {
  it(
    'handles 20,000 messages over 200 keys on 4 threads, each key in produce order, and commits them all',
    { timeout: 240_000 },
    async () => {
      const { admin, topic, groupId } = await backlog();
      const supervisor = await runPool(topic, groupId);
      const worker = supervisor.status().workers[0]!;
      expect(worker.workerId).toBe('pool-order/consumer/0');

      await waitFor(() => orders(supervisor).recorded >= MESSAGES, {
        timeoutMs: 180_000,
        intervalMs: 250,
        message: `${MESSAGES} messages recorded`,
      });
      await everythingCommitted(admin, topic, groupId);
      const { byKey, duplicates, recorded } = orders(supervisor);
      for (const [key, seqs] of byKey) expect(seqs, `order of ${key}`).toEqual(inOrder);
      expect(duplicates).toBe(0);
      expect(recorded).toBe(MESSAGES);
      // Each thread holds several messages (thread-pool.ts, MESSAGES_PER_THREAD), and still runs one handler at a time.
      expect(supervisor.store.get('pool-order:overlaps')?.value ?? 0, 'handlers overlapping in one pool thread').toBe(0);

      // Health comes with the heartbeats: 4 threads (the config's), all of them used.
      const pool = await waitFor(
        () => {
          const p = supervisor.status().workers[0]!.pool;
          return p && p.completed >= MESSAGES && p.inFlight === 0 ? p : undefined;
        },
        { message: 'pool health after the run' },
      );
      expect(pool).toMatchObject({
        mode: 'key',
        threads: 4,
        maxThreads: 4,
        maxInFlight: 2_000,
        threadExits: 0,
        running: 0,
        queued: 0,
        waitingOnKey: 0,
      });
      expect(pool.busyMs).toBeGreaterThan(MESSAGES * 0.5); // 1 ms on average per message
    },
  );

  it(
    'loses nothing when a pool thread dies every 2,000 messages: the message is retried, order per key holds, duplicates counted',
    { timeout: 240_000 },
    async () => {
      const { admin, topic, groupId } = await backlog();
      const supervisor = await runPool(topic, groupId, { killEvery: 2_000 });
      const kills = MESSAGES / 2_000;
      // Half the kills come after the message was recorded: its retry records it again.
      const expectedDuplicates = kills / 2;

      await waitFor(() => orders(supervisor).recorded >= MESSAGES + expectedDuplicates, {
        timeoutMs: 180_000,
        intervalMs: 250,
        message: 'every message recorded',
      });
      await everythingCommitted(admin, topic, groupId);
      const { byKey, duplicates } = orders(supervisor);
      for (const [key, seqs] of byKey) expect(seqs, `order of ${key}`).toEqual(inOrder);
      expect(duplicates).toBe(expectedDuplicates);

      const pool = await waitFor(
        () => {
          const p = supervisor.status().workers[0]!.pool;
          return p && p.threadExits >= kills && p.threads === 4 ? p : undefined;
        },
        { message: `${kills} pool thread exits, and 4 threads again` },
      );
      expect(pool.threadExits).toBe(kills);
      // The consumer worker itself never went down, and nothing went to the dead-letter topic.
      expect(supervisor.status().workers[0]!.restarts).toBe(0);
      const [dlq] = await admin.fetchTopicOffsets(`${topic}.dlq`);
      expect(dlq!.high).toBe('0');
    },
  );
});
