/** Helpers of the messaging-*.test.ts files: producing in bulk, reading topics back, the admin CLI. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { IHeaders, KafkaMessage, Message, Producer } from 'kafkajs';
import { onTestFinished } from 'vitest';
import { main } from '../../src/cli.js';
import { consumerConfig } from '../../src/kafka/client.js';
import { dlqAdminMethods } from '../../src/admin/dead-letter.js';
import { createLogger } from '../../src/log.js';
import type { DeliveryCounters } from '../../src/protocol.js';
import { startAdminServer } from '../../src/admin/server.js';
import type { StateStore } from '../../src/state/store.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { kafkaForTest, testBrokers, testLogger, uniqueName, waitFor } from '../helpers.js';

/** Sends messages in batches of `batch` (acks=all), in order. */
export async function produce(producer: Producer, topic: string, messages: Message[], batch = 500): Promise<void> {
  for (let i = 0; i < messages.length; i += batch) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + batch) });
}

/** Every worker's DeliveryCounters (the shared map `wharf.delivery`), summed. */
export function deliveryTotals(store: StateStore): DeliveryCounters {
  const entry = store.get('wharf.delivery');
  const workers = Object.values((entry?.value ?? {}) as Record<string, DeliveryCounters & { at: string }>);
  const total = {} as Record<string, number>;
  for (const w of workers) for (const [k, v] of Object.entries(w)) if (typeof v === 'number') total[k] = (total[k] ?? 0) + v;
  return total as unknown as DeliveryCounters;
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

function strings(headers: IHeaders | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : v)]));
}

/** Reads a topic from the beginning with a plain kafkajs consumer until `count` messages arrived. */
export async function readAll(topic: string, count: number, { timeoutMs = 60_000 } = {}): Promise<ReadMessage[]> {
  const consumer = await kafkaForTest().consumer(consumerConfig(uniqueName('reader')));
  const out: ReadMessage[] = [];
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
      out.push({ partition, offset: message.offset, key: message.key?.toString() ?? null, value: message.value, headers: strings(message.headers) });
    },
  });
  await waitFor(() => out.length >= count, { timeoutMs, message: `${count} messages in ${topic} (have ${out.length})` });
  return out;
}

/** Committed offsets of a group on a topic, per partition. */
export async function committed(groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = await kafkaForTest().admin();
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(entry!.partitions.map((p) => [p.partition, BigInt(p.offset)]));
}

/** End offsets of a topic, per partition. */
export async function endOffsets(topic: string): Promise<Map<number, bigint>> {
  const admin = await kafkaForTest().admin();
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
}

/**
 * The admin socket a running `npm start` opens, with the same `dlq.*` methods, for this test's
 * supervisor; returns how to run `npm run admin -- …` against it, in this process.
 */
export async function adminFor(supervisor: Supervisor, consumed: string[]) {
  const home = mkdtempSync(join(tmpdir(), 'wharf-dlq-'));
  const logger = testLogger();
  const server = await startAdminServer({
    api: {
      state: {
        describe: () => supervisor.store.describe(),
        get: (name) => supervisor.store.get(name),
        set: (name, value) => supervisor.store.set(name, value),
        delete: (name) => supervisor.store.delete(name),
        snapshot: () => supervisor.store.snapshot(),
        watch: (name, listener) => supervisor.store.watch(name, listener),
      },
      status: () => supervisor.status(),
      scale: (service, consumers) => supervisor.scale(service, consumers),
      extra: dlqAdminMethods({ brokers: testBrokers(), clientId: uniqueName('wharf'), topics: consumed, state: supervisor.store.local, logger }),
    },
    dir: home,
    logger,
    env: {},
  });
  onTestFinished(async () => {
    await server.close();
    rmSync(home, { recursive: true, force: true });
  });
  return async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const sink = (append: (text: string) => void) => new Writable({ write(chunk, _encoding, done) { append(String(chunk)); done(); } });
    const code = await main(['admin', ...args], {
      env: { WHARF_HOME: home },
      stdout: sink((text) => (stdout += text)),
      stderr: sink((text) => (stderr += text)),
      logger: createLogger({ level: 'silent' }),
    });
    return { code, stdout, stderr };
  };
}
