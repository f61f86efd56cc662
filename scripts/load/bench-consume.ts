import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, Transaction } from 'kafkajs';
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { TimeoutError } from '../../src/errors.js';
import { producerConfig } from '../../src/kafka/client.js';
import { createTopics } from '../../src/kafka/topics.js';
import type { Logger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { createSupervisor } from '../../src/supervisor/supervisor.js';
import { watchOverHttp } from './bench-http.js';
import { startKafkajsSink, type BareMode } from './kafkajs-sink.js';
import { waitForStableGroup } from './lag.js';
import { HANDLED_COUNTER, SINK_MODULE } from './sink.js';

/**
 * Consume benchmarks: how fast wharf drains a pre-filled topic, against a bare kafkajs consumer.
 *
 * Every measurement gets an identical topic whose messages are written in one Kafka transaction
 * that stays open while the consumers start: consumers read committed data only (kafkajs's
 * default, and wharf's), so they join, rebalance and settle on an empty-looking topic. The clock
 * starts at the commit, when all messages appear at once, and stops at the last one handled —
 * so neither thread start-up nor a rebalance while workers join counts as anyone's throughput,
 * and a fast consumer cannot finish before the clock starts. Start-up is reported apart.
 *
 * Before that transaction, a tenth as many messages are written and committed: each consumer
 * handles those first, so the clock measures code that is warm (compiled by V8's optimizing
 * tier), as a running service's is, and not how long each variant takes to warm up — a longer
 * path (wharf's) paid more for it inside a 2-second drain, and more unevenly, since the
 * compiler's threads share the cores with the broker.
 */
export interface DrainMeasure {
  /** Messages handled per second from the commit to the last one. */
  msgsPerSec: number;
  drainS: number;
  /** Seconds from starting the consumer (threads, connections, group join) to a stable group. */
  startupS: number;
}

export interface DrainCase {
  brokers: string[];
  kafka: Kafka;
  admin: Admin;
  partitions: number;
  expected: number;
  /** Hash iterations per message (0: a no-op handler). */
  hashIterations: number;
  logger: Logger;
  timeoutMs?: number;
  /** The consumer thread's young generation in MB (`resourceLimits.maxYoungGenerationSizeMb`); default: each side's own (scripts/bench/drain-gc.ts). */
  youngGenerationMb?: number;
}

interface StartedSink {
  members: number;
  handled(): number | Promise<number>;
  stop(): Promise<void>;
}

type SinkFactory = (topic: string, groupId: string) => Promise<StartedSink>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes `warmup` small JSON messages over all partitions in a committed transaction, then
 * `count` more in one left open.
 */
async function prefill(
  kafka: Kafka,
  topic: string,
  { warmup, count }: { warmup: number; count: number },
  size = 100,
): Promise<{ commit(): Promise<void>; close(): Promise<void> }> {
  const producer = kafka.producer(
    producerConfig({ transactionalId: `wharf-bench-${randomBytes(6).toString('hex')}`, maxInFlightRequests: 1, idempotent: true }),
  );
  await producer.connect();
  const pad = 'x'.repeat(Math.max(0, size - 30));
  const write = async (into: Transaction, from: number, to: number) => {
    for (let done = from; done < to;) {
      const batch = Array.from({ length: Math.min(2_000, to - done) }, (_, i) => ({
        key: `k${(done + i) % 1_000}`,
        value: `{"i":${done + i},"pad":"${pad}"}`,
      }));
      await into.send({ topic, acks: -1, messages: batch });
      done += batch.length;
    }
  };
  const first = await producer.transaction();
  await write(first, 0, warmup);
  await first.commit();
  let transaction: Transaction | undefined = await producer.transaction();
  await write(transaction, warmup, warmup + count);
  return {
    async commit() {
      await transaction!.commit();
      transaction = undefined;
    },
    async close() {
      if (transaction) await transaction.abort().catch(() => undefined);
      await producer.disconnect();
    },
  };
}

async function measureDrain(c: DrainCase, start: SinkFactory): Promise<DrainMeasure> {
  const name = `wharf-bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  await createTopics(c.admin, [{ topic: name, numPartitions: c.partitions }]);
  const warmup = Math.ceil(c.expected / 10);
  const gate = await prefill(c.kafka, name, { warmup, count: c.expected });
  let sink: StartedSink | undefined;
  try {
    const started = performance.now();
    sink = await start(name, name);
    const timeoutMs = c.timeoutMs ?? 300_000;
    const handledAll = async (count: number, what: string, deadline: number) => {
      let handled = await sink!.handled();
      while (handled < count) {
        if (performance.now() > deadline)
          throw new TimeoutError(
            `Benchmark consumer handled ${handled} of ${count} ${what} in ${timeoutMs / 1_000} s: is the broker overloaded?`,
          );
        await sleep(2);
        handled = await sink!.handled();
      }
    };
    await waitForStableGroup(c.admin, name, sink.members);
    const stable = performance.now();
    await handledAll(warmup, 'warm-up messages', stable + timeoutMs);
    const opened = performance.now();
    await gate.commit();
    await handledAll(warmup + c.expected, 'messages', opened + timeoutMs);
    const drainS = (performance.now() - opened) / 1_000;
    return {
      msgsPerSec: Math.round(c.expected / drainS),
      drainS: Math.round(drainS * 1_000) / 1_000,
      startupS: Math.round(stable - started) / 1_000,
    };
  } finally {
    await sink?.stop();
    await gate.close();
    await c.admin.deleteTopics({ topics: [name] }).catch(() => undefined);
    await c.admin.deleteGroups([name]).catch(() => undefined);
  }
}

/**
 * The topic through wharf: a supervisor running the sink service with `workers` consumer workers
 * (with `concurrency`, one worker whose handlers run in the key-ordered pool).
 */
export function consumeWithWharf(
  c: DrainCase & { workers: number; concurrency?: { mode: 'key'; threads: number }; http?: boolean },
): Promise<DrainMeasure> {
  return measureDrain(c, async (topic, groupId) => {
    const config = parseConfig(
      {
        services: [
          {
            module: compiled(SINK_MODULE),
            workers: { consumer: c.workers },
            consumes: { topics: [topic], groupId, ...(c.concurrency ? { concurrency: c.concurrency } : {}) },
            options: { hashIterations: c.hashIterations },
          },
        ],
        kafka: { clientId: 'wharf-bench' },
        ...(c.youngGenerationMb ? { supervisor: { resourceLimits: { maxYoungGenerationSizeMb: c.youngGenerationMb } } } : {}),
      },
      'bench',
      process.cwd(),
    );
    // With the HTTP listener as `npm start` has it (bench-http.ts), or without (`--http off`: nothing counted).
    const http = c.http ?? true;
    const supervisor = createSupervisor({
      config,
      services: await loadServices(config),
      brokers: c.brokers,
      logger: c.logger,
      metrics: http,
    });
    const watching = http ? await watchOverHttp(supervisor, c.logger) : undefined;
    await supervisor.start();
    const counter = supervisor.store.local.counter(HANDLED_COUNTER);
    return {
      members: c.workers,
      handled: () => counter.get(),
      async stop() {
        await watching?.stop();
        await supervisor.stop();
        supervisor.store.close();
      },
    };
  });
}

/**
 * The baselines (kafkajs-sink.ts): the kafkajs consumer a user would write by hand, with the same
 * fetch settings and partition concurrency as wharf's consumer runner, in a thread of its own.
 */
export function consumeWithKafkajs(c: DrainCase & { mode: BareMode }): Promise<DrainMeasure> {
  return measureDrain(c, async (topic, groupId) => {
    const sink = await startKafkajsSink({
      brokers: c.brokers,
      topic,
      groupId,
      mode: c.mode,
      hashIterations: c.hashIterations,
      youngGenerationMb: c.youngGenerationMb,
    });
    return { members: 1, ...sink };
  });
}
