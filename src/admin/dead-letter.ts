import { TextDecoder } from 'node:util';
import { z } from 'zod';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { DeadLetterNotFoundError, UsageError, WharfError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SharedState } from '../state/types.js';
import { createKafka, producerConfig } from '../kafka/client.js';
import { HEADERS, headersToStrings } from '../kafka/codec.js';
import { DLQ_HEADER_PREFIX, DLQ_HEADERS, DLQ_SUFFIX, deadLetterTopic } from '../kafka/dead-letter.js';
import { readTopic } from '../kafka/topic-reader.js';
import { topicNameSchema } from '../kafka/topic-name.js';

/** One dead letter as `dlq list` shows it. `id` is `<dlq-topic>/<partition>/<offset>`. */
export interface DeadLetterEntry {
  id: string;
  dlqTopic: string;
  partition: number;
  offset: string;
  /** Where it came from. */
  topic: string;
  originalPartition: number | null;
  originalOffset: string | null;
  /** The error code (ERR_DECODE, ERR_SCHEMA, ERR_MESSAGE_TOO_LARGE, or the handler's), else its name. */
  code: string;
  reason: string;
  attempts: number;
  at: string;
  key: string | null;
  bytes: number;
  /** The value was too big for the dead-letter topic and is not there (it cannot be replayed). */
  valueDropped: boolean;
  replayedAt: string | null;
}

export interface DeadLetterDetail extends DeadLetterEntry {
  /** The original headers, without wharf's dead-letter ones. */
  headers: Record<string, string>;
  errorName: string;
  stack: string;
  /** The value as text when it is UTF-8, else base64. */
  value: string | null;
  valueEncoding: 'utf8' | 'base64';
}

/** Where replays are remembered, so `replay --all` does not replay one twice (the supervisor's shared state). */
export interface ReplayLedger {
  get(id: string): Promise<string | undefined>;
  set(id: string, at: string): Promise<void>;
}

export interface DeadLetterAdminOptions {
  kafka: Kafka;
  /** The dead-letter topics of the running services. */
  topics(): string[];
  ledger?: ReplayLedger;
  logger: Logger;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseId(id: string): { dlqTopic: string; partition: number; offset: bigint } {
  const match = /^(.+)\/(\d{1,9})\/(\d{1,19})$/.exec(id);
  if (!match) throw new UsageError(`"${id}" is not a dead-letter id: use <dlq-topic>/<partition>/<offset> as \`dlq list\` prints it.`);
  return { dlqTopic: match[1]!, partition: Number(match[2]), offset: BigInt(match[3]!) };
}

/**
 * The operator's side of dead-letter topics, behind `npm run admin -- dlq`: list what is parked,
 * show one, and replay chosen ones (or all) to the topic they came from, with their original key,
 * value and headers, less wharf's dead-letter headers, plus `wharf-replay-of` naming the dead
 * letter. The supervisor serves these as admin methods (`dlq.list`, `dlq.show`, `dlq.replay`).
 */
export function createDeadLetterAdmin({ kafka, topics, ledger, logger }: DeadLetterAdminOptions) {
  function dlqTopicOf(topic: string): string {
    return topic.endsWith(DLQ_SUFFIX) ? topic : deadLetterTopic(topic);
  }

  async function entry(dlqTopic: string, partition: number, message: KafkaMessage): Promise<DeadLetterEntry> {
    const h = headersToStrings(message.headers);
    const id = `${dlqTopic}/${partition}/${message.offset}`;
    const dropped = h[DLQ_HEADERS.valueDropped];
    return {
      id,
      dlqTopic,
      partition,
      offset: message.offset,
      topic: h[DLQ_HEADERS.topic] ?? dlqTopic.slice(0, -DLQ_SUFFIX.length),
      originalPartition: h[DLQ_HEADERS.partition] === undefined ? null : Number(h[DLQ_HEADERS.partition]),
      originalOffset: h[DLQ_HEADERS.offset] ?? null,
      code: h[DLQ_HEADERS.errorCode] ?? h[DLQ_HEADERS.errorName] ?? 'unknown',
      reason: h[DLQ_HEADERS.errorMessage] ?? '',
      attempts: Number(h[DLQ_HEADERS.attempts] ?? 0),
      at: h[DLQ_HEADERS.at] ?? new Date(Number(message.timestamp)).toISOString(),
      key: message.key ? message.key.toString('utf8') : null,
      bytes: dropped === undefined ? (message.value?.length ?? 0) : Number(dropped),
      valueDropped: dropped !== undefined,
      replayedAt: (await ledger?.get(id)) ?? null,
    };
  }

  /** The dead letters `ids` name, in the order they were parked; all of a topic with `all`. */
  async function read(dlqTopic: string, ids: string[] | 'all'): Promise<{ partition: number; message: KafkaMessage }[]> {
    const wanted = ids === 'all' ? undefined : ids.map(parseId);
    if (wanted?.some((w) => w.dlqTopic !== dlqTopic)) throw new UsageError(`Dead letters to read together must all be in ${dlqTopic}.`);
    const found: { partition: number; message: KafkaMessage }[] = [];
    await readTopic({
      kafka,
      topic: dlqTopic,
      logger,
      ranges: wanted
        ? () =>
            [...new Set(wanted.map((w) => w.partition))].map((partition) => {
              const offsets = wanted.filter((w) => w.partition === partition).map((w) => w.offset);
              return { partition, from: offsets.reduce((a, b) => (b < a ? b : a)), to: offsets.reduce((a, b) => (b > a ? b : a)) + 1n };
            })
        : undefined,
      visit(partition, message) {
        if (!wanted || wanted.some((w) => w.partition === partition && w.offset === BigInt(message.offset)))
          found.push({ partition, message });
      },
    });
    const missing = wanted?.filter((w) => !found.some((f) => f.partition === w.partition && BigInt(f.message.offset) === w.offset)) ?? [];
    if (missing.length > 0) {
      throw new DeadLetterNotFoundError(
        `No dead letter ${missing.map((m) => `${dlqTopic}/${m.partition}/${m.offset}`).join(', ')}: \`npm run admin -- dlq list ${dlqTopic}\` lists what is there.`,
        { context: { topic: dlqTopic } },
      );
    }
    return found.sort(
      (a, b) =>
        Number(a.message.timestamp) - Number(b.message.timestamp) ||
        a.partition - b.partition ||
        Number(BigInt(a.message.offset) - BigInt(b.message.offset)),
    );
  }

  return {
    /** Dead letters of one topic (or of every consumed topic), the most recent `limit` per topic. */
    async list({
      topic,
      limit = 100,
    }: {
      topic?: string;
      limit?: number;
    }): Promise<{ entries: DeadLetterEntry[]; topics: { topic: string; count: number }[] }> {
      const names = topic ? [dlqTopicOf(topic)] : [...new Set(topics())];
      const entries: DeadLetterEntry[] = [];
      const counts: { topic: string; count: number }[] = [];
      for (const dlqTopic of names) {
        const found: { partition: number; message: KafkaMessage }[] = [];
        let total = 0n;
        await readTopic({
          kafka,
          topic: dlqTopic,
          logger,
          ranges: (bounds) =>
            bounds.map((b) => {
              total += b.high - b.low;
              return { partition: b.partition, from: b.high - BigInt(limit) > b.low ? b.high - BigInt(limit) : b.low, to: b.high };
            }),
          visit: (partition, message) => found.push({ partition, message }),
        });
        counts.push({ topic: dlqTopic, count: Number(total) });
        found.sort((a, b) => Number(a.message.timestamp) - Number(b.message.timestamp));
        for (const { partition, message } of found.slice(-limit)) entries.push(await entry(dlqTopic, partition, message));
      }
      return { entries, topics: counts };
    },

    async show({ id }: { id: string }): Promise<DeadLetterDetail> {
      const { dlqTopic } = parseId(id);
      const [{ partition, message }] = (await read(dlqTopic, [id])) as [{ partition: number; message: KafkaMessage }];
      const all = headersToStrings(message.headers);
      const headers = Object.fromEntries(Object.entries(all).filter(([k]) => !k.startsWith(DLQ_HEADER_PREFIX)));
      let value: string | null = null;
      let valueEncoding: 'utf8' | 'base64' = 'utf8';
      if (message.value) {
        try {
          value = utf8.decode(message.value);
        } catch {
          value = message.value.toString('base64');
          valueEncoding = 'base64';
        }
      }
      return {
        ...(await entry(dlqTopic, partition, message)),
        headers,
        errorName: all[DLQ_HEADERS.errorName] ?? '',
        stack: all[DLQ_HEADERS.errorStack] ?? '',
        value,
        valueEncoding,
      };
    },

    /**
     * Sends dead letters back to their original topics, in the order they were parked. With
     * `all`, those already replayed are skipped (`ids` replays them again).
     */
    async replay({ topic, ids, all = false }: { topic?: string; ids?: string[]; all?: boolean }) {
      if (all === (ids !== undefined && ids.length > 0))
        throw new UsageError('Replay either chosen dead letters (their ids) or --all of a topic, not both and not neither.');
      const dlqTopic = all ? dlqTopicOf(topic ?? '') : parseId(ids![0]!).dlqTopic;
      if (all && !topic) throw new UsageError('Name the topic whose dead letters to replay: dlq replay <topic> --all.');
      const chosen = await read(dlqTopic, all ? 'all' : ids!);
      const producer = kafka.producer(producerConfig());
      const replayed: { id: string; topic: string }[] = [];
      const skipped: { id: string; reason: string }[] = [];
      await producer.connect();
      try {
        for (const { partition, message } of chosen) {
          const e = await entry(dlqTopic, partition, message);
          if (e.valueDropped) {
            skipped.push({ id: e.id, reason: `its value (${e.bytes} bytes) was too big for ${dlqTopic} and was not kept` });
            continue;
          }
          if (all && e.replayedAt) {
            skipped.push({ id: e.id, reason: `replayed already at ${e.replayedAt}` });
            continue;
          }
          const original = headersToStrings(message.headers);
          const headers = Object.fromEntries(
            Object.entries(original).filter(([k]) => !k.startsWith(DLQ_HEADER_PREFIX) && k !== HEADERS.attempt),
          );
          const at = new Date().toISOString();
          await producer.send({
            topic: e.topic,
            acks: -1,
            messages: [
              {
                key: message.key ?? null,
                value: message.value ?? null,
                headers: { ...headers, [HEADERS.replayOf]: e.id, [HEADERS.replayedAt]: at },
              },
            ],
          });
          await ledger?.set(e.id, at);
          replayed.push({ id: e.id, topic: e.topic });
        }
      } catch (error) {
        throw new WharfError('ERR_DLQ_REPLAY', `Replay stopped after ${replayed.length} of ${chosen.length}: ${(error as Error).message}`, {
          cause: error,
          retriable: true,
          context: { replayed },
        });
      } finally {
        await producer.disconnect();
      }
      logger.info({ topic: dlqTopic, replayed: replayed.length, skipped: skipped.length }, 'dead letters replayed');
      return { replayed, skipped };
    },
  };
}

export type DeadLetterAdmin = ReturnType<typeof createDeadLetterAdmin>;

const dlqParams = {
  list: z.strictObject({ topic: topicNameSchema.optional(), limit: z.number().int().min(1).max(10_000).optional() }),
  show: z.strictObject({ id: z.string().min(5).max(300) }),
  replay: z.strictObject({
    topic: topicNameSchema.optional(),
    ids: z.array(z.string().min(5).max(300)).max(10_000).optional(),
    all: z.boolean().optional(),
  }),
};

function checked<T>(schema: z.ZodType<T>, method: string, params: unknown): T {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new WharfError('ERR_BAD_PARAMS', `${method}: ${issue.path.join('.') || 'params'}: ${issue.message}`, { context: { method } });
}

/** The admin socket's `dlq.*` methods (AdminApi.extra), their params checked before any Kafka work. */
export function deadLetterMethods(admin: DeadLetterAdmin): Record<string, (params: unknown) => Promise<unknown>> {
  return {
    'dlq.list': async (params) => admin.list(checked(dlqParams.list, 'dlq.list', params)),
    'dlq.show': async (params) => admin.show(checked(dlqParams.show, 'dlq.show', params)),
    'dlq.replay': async (params) => admin.replay(checked(dlqParams.replay, 'dlq.replay', params)),
  };
}

/** The shared map where replays are remembered, keyed by dead-letter id. */
export const REPLAYED_STATE = 'wharf.dlq.replayed';

/**
 * What the supervisor serves as `dlq.*` admin methods: the dead letters of the topics its
 * services consume, replays remembered in its shared state.
 */
export function dlqAdminMethods({
  brokers,
  clientId,
  topics,
  state,
  logger,
}: {
  brokers: string[];
  clientId: string;
  topics: readonly string[];
  state: SharedState;
  logger: Logger;
}) {
  const kafka = createKafka({ brokers, logger: logger.child({ component: 'dlq' }), clientId: `${clientId}-dlq-admin` });
  const replayed = state.map<string>(REPLAYED_STATE);
  const admin = createDeadLetterAdmin({
    kafka,
    topics: () => [...new Set(topics)].map(deadLetterTopic),
    ledger: { get: (id) => replayed.get(id), set: (id, at) => replayed.set(id, at) },
    logger,
  });
  return deadLetterMethods(admin);
}
