import { once } from 'node:events';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { Consumer, ConsumerRunConfig } from 'kafkajs';
import { DELIVERY_DEFAULTS } from '../../src/delivery.js';
import { consumerConfig, createKafka } from '../../src/kafka/client.js';
import { createLogger } from '../../src/log.js';
import { compiled } from '../../src/paths.js';
import { burnCpu } from './cpu-work.js';

/**
 * The benchmarks' kafkajs baselines, each in a thread of its own started for the measure — as
 * wharf's consumer is a worker thread started for it. In the bench's main thread, a baseline
 * would run on code the earlier reps had already compiled while wharf's new worker starts cold,
 * which is not the same race (the first rep of a baseline there ran 15–25 % slower than the rest).
 *
 * - `eachMessage`, `eachBatch`: kafkajs alone, the message untouched (the floor of its cost);
 * - `handWritten`: the service a user would write by hand on kafkajs — decode each JSON value,
 *   run the handler, let kafkajs commit (its autoCommit) — what wharf's sink service does.
 */
export type BareMode = 'eachMessage' | 'eachBatch' | 'handWritten';

export const KAFKAJS_SINK_ENTRY = 'scripts/bench/kafkajs-sink.js';

interface SinkData {
  brokers: string[];
  topic: string;
  groupId: string;
  mode: BareMode;
  hashIterations: number;
  /** One Int32 slot: messages handled, read by the bench's thread without a message per count. */
  handled: SharedArrayBuffer;
}

/** Starts a baseline consumer in its own thread; resolves once it has joined (subscribed and running). */
export async function startKafkajsSink({
  youngGenerationMb,
  ...options
}: Omit<SinkData, 'handled'> & { youngGenerationMb?: number }): Promise<{ handled(): number; stop(): Promise<void> }> {
  const handled = new SharedArrayBuffer(4);
  const count = new Int32Array(handled);
  const worker = new Worker(compiled(KAFKAJS_SINK_ENTRY), {
    workerData: { ...options, handled } satisfies SinkData,
    // Node's default unless asked (a user's hand-written service runs with it).
    ...(youngGenerationMb ? { resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } } : {}),
  });
  const failed = once(worker, 'error').then(([error]) => Promise.reject(error as Error));
  await Promise.race([once(worker, 'message'), failed]);
  return {
    handled: () => Atomics.load(count, 0),
    async stop() {
      worker.postMessage('stop');
      await Promise.race([once(worker, 'message'), failed.catch(() => undefined)]);
      await worker.terminate();
    },
  };
}

/** The thread's side (scripts/bench/kafkajs-sink.ts only calls this). */
export async function runKafkajsSinkThread(): Promise<void> {
  const { brokers, topic, groupId, mode, hashIterations, handled } = workerData as SinkData;
  const count = new Int32Array(handled);
  const kafka = createKafka({ brokers, logger: createLogger({ level: 'warn' }), clientId: 'wharf-bench-kafkajs' });
  const consumer: Consumer = kafka.consumer(consumerConfig(groupId));
  const handle = () => {
    if (hashIterations) burnCpu(hashIterations);
    Atomics.add(count, 0, 1);
  };
  const handler = async (value: unknown) => {
    if (value === undefined) throw new Error('no value');
    handle();
  };
  const concurrency = { partitionsConsumedConcurrently: DELIVERY_DEFAULTS.partitionsConsumedConcurrently };
  const run: ConsumerRunConfig =
    mode === 'eachMessage'
      ? { ...concurrency, eachMessage: async () => handle() }
      : mode === 'handWritten'
        ? { ...concurrency, eachMessage: async ({ message }) => handler(JSON.parse(message.value!.toString('utf8'))) }
        : {
            ...concurrency,
            eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
              for (const message of batch.messages) {
                handle();
                resolveOffset(message.offset);
              }
              await heartbeat();
            },
          };
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run(run);
  parentPort!.once('message', () => {
    void consumer.disconnect().finally(() => parentPort!.postMessage('stopped'));
  });
  parentPort!.postMessage('running');
}
