/** Helpers of the messaging-*.test.ts files: producing in bulk, reading topics back, the admin CLI. */
import { dirname } from 'node:path';
import type { IHeaders, KafkaMessage, Message, Producer } from 'kafkajs';
import { consumerConfig } from '../../src/kafka/client.js';
import type { DeliveryCounters } from '../../src/protocol.js';
import type { Wharf } from '../../src/app/start.js';
import type { StateStore } from '../../src/state/store.js';
import { kafkaForTest, runAdminIn, uniqueName, waitFor } from '../helpers.js';

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
      out.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: message.value,
        headers: strings(message.headers),
      });
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

/** Runs `npm run admin -- …` in this process against the admin socket of `wharf` (started with `admin: true`). */
export function adminCli(wharf: Wharf) {
  if (!wharf.admin) throw new Error('adminCli needs wharf started with an admin socket (startWharfForTest(…, { admin: true }))');
  const home = dirname(wharf.admin.connectionFile);
  return (args: string[]) => runAdminIn(home, args);
}
