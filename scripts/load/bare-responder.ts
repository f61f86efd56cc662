import { parentPort, Worker, workerData } from 'node:worker_threads';
import { DELIVERY_DEFAULTS } from '../../src/delivery.js';
import { WharfError } from '../../src/errors.js';
import { createKafka, consumerConfig, producerConfig } from '../../src/kafka/client.js';
import { HEADERS, headersToStrings } from '../../src/kafka/codec.js';
import { createLogger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import type { RunningTarget } from './target.js';

/**
 * The round-trip baseline: what a user would write with kafkajs alone to answer requests like
 * Jarvis does (decode, answer, produce the reply with acks=all, idempotent), in one worker thread
 * as wharf's consumer would be, with the same partition concurrency — but no supervisor, shared
 * state, retries or dead letters. The difference to wharf's figure is what those cost.
 */
export interface BareResponderData {
  brokers: string[];
  topic: string;
  groupId: string;
}

export const BARE_RESPONDER_ENTRY = 'scripts/bench/bare-responder.js';

export async function startBareResponder(data: BareResponderData): Promise<RunningTarget> {
  const worker = new Worker(compiled(BARE_RESPONDER_ENTRY), { workerData: data });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    void exited.then(() =>
      reject(new WharfError('ERR_BENCH_RESPONDER', 'The kafkajs responder thread exited before it was ready; see its log above.')),
    );
  });
  return {
    service: 'kafkajs responder',
    async stop() {
      worker.postMessage('stop');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
      await worker.terminate();
    },
  };
}

/** The thread's side (scripts/bench/bare-responder.ts only calls this). */
export async function runBareResponder(): Promise<void> {
  const { brokers, topic, groupId } = workerData as BareResponderData;
  const logger = createLogger({ fd: 2, level: 'warn' });
  const kafka = createKafka({ brokers, logger, clientId: 'wharf-bench-kafkajs' });
  const producer = kafka.producer(producerConfig());
  const consumer = kafka.consumer(consumerConfig(groupId));
  await producer.connect();
  const joined = new Promise<void>((resolve) => {
    const off = consumer.on(consumer.events.GROUP_JOIN, () => {
      off();
      resolve();
    });
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: DELIVERY_DEFAULTS.partitionsConsumedConcurrently,
    eachMessage: async ({ message }) => {
      const headers = headersToStrings(message.headers);
      const value = JSON.parse(message.value!.toString('utf8')) as { text: string };
      const reply = { ...value, reply: `Yes: ${value.text} — done.`, answeredBy: 'kafkajs' };
      await producer.send({
        topic: headers[HEADERS.replyTo]!,
        acks: -1,
        messages: [
          {
            key: message.key,
            value: JSON.stringify(reply),
            headers: { [HEADERS.contentType]: 'application/json', [HEADERS.correlationId]: headers[HEADERS.correlationId]! },
          },
        ],
      });
    },
  });
  await joined;
  parentPort!.once('message', () => {
    void Promise.all([consumer.disconnect(), producer.disconnect()]).then(() => process.exit(0));
  });
  parentPort!.postMessage('ready');
}
