/**
 * How a service's consumer takes its messages: retries, commit batching, backpressure, the
 * inbound size limit and a thread pool for the handler. One shared vocabulary, imported by the
 * consumer runner (src/kafka/), the pool (src/pool/), the worker protocol, the service API and
 * the config schema (src/config/schema.ts puts the options shape in a config entry's `consumes`).
 * The zod schema below is the one source of their types and defaults.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';

const ms = (min: number) => z.number().int().min(min);

/**
 * Run the handler in a pool of threads per consumer worker (src/pool/, docs/pool.md), keeping
 * order per key, per partition or none.
 */
export const concurrencySchema = z.strictObject({
  mode: z.enum(['key', 'partition', 'unordered']).default('key'),
  /** Pool threads per consumer worker; default: the machine's available parallelism (src/pool/settings.ts). */
  threads: z.number().int().min(1).max(256).optional(),
  /** Messages handed to the pool and not finished, per consumer worker; what a fetch brings beyond it waits, its partition paused. Default: `consumes.maxInFlight`. */
  maxInFlight: z.number().int().min(1).max(1_000_000).optional(),
});

/**
 * How a service consumes (src/kafka/consumer-runner.ts): retries, commit batching, backpressure
 * and the inbound size limit, each default declared here once. A definition's `consumes` and a
 * config entry's `consumes` set these keys (deliveryOptionsShape: the same checks, no defaults);
 * the config wins, then the definition, then these defaults (deliverySettings).
 */
export const deliverySchema = z.strictObject({
  retry: z
    .strictObject({
      /** Handler attempts before a message is dead-lettered (1: no retries). */
      attempts: z.number().int().min(1).max(100).default(3),
      initialDelayMs: ms(0).default(100),
      maxDelayMs: ms(0).default(2_000),
    })
    .prefault({}),
  commit: z
    .strictObject({
      /** Offsets handled are committed at least this often… */
      intervalMs: ms(10).default(1_000),
      /**
       * …and as soon as this many are waiting. Each commit is a request the broker serves: 10,000
       * keeps a fast consumer to a commit per ~10,000 messages (kafkajs alone commits once per
       * fetched batch), while the interval bounds what a crash hands to the next owner again.
       */
      threshold: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  /** Messages taken from the fetch buffer and not finished, per worker; what a fetch brings beyond it waits there and its partition is paused. */
  maxInFlight: z.number().int().min(1).max(1_000_000).default(1_000),
  /** The same per partition, so one stuck partition cannot take the whole budget. */
  maxInFlightPerPartition: z.number().int().min(1).max(1_000_000).default(250),
  /** Handlers running at once per worker (each partition stays in order). */
  partitionsConsumedConcurrently: z.number().int().min(1).max(1_000).default(16),
  /** Values bigger than this go to the dead-letter topic unread. */
  maxMessageBytes: z
    .number()
    .int()
    .min(1)
    .max(100 * 1024 * 1024)
    .default(1024 * 1024),
  /**
   * The next message of a partition may start while the previous one's sends and reply are under
   * way (commits still wait for them; docs/messaging.md). false: one at a time, for a service
   * that needs its previous message's effects durable before the next one starts.
   */
  pipelineSends: z.boolean().default(true),
  /** Handlers in a thread pool: see src/pool/settings.ts and docs/pool.md. */
  concurrency: concurrencySchema.optional(),
});

export type ConcurrencyOptions = z.input<typeof concurrencySchema>;
export type ConcurrencyMode = z.output<typeof concurrencySchema>['mode'];
/** What a `consumes` block may set (definition or config): every delivery key optional. */
export type DeliveryOptions = z.input<typeof deliverySchema>;
/** The filled-in delivery settings of one service's consumer role (the pool settles `concurrency` itself). */
export type DeliverySettings = Omit<z.output<typeof deliverySchema>, 'concurrency'>;

/**
 * `schema` with its defaults taken out (each kept as the JSON Schema's `default`): what a
 * `consumes` block may set, checked as the filled form is, but leaving absent keys absent so a
 * definition's and a config's blocks merge key by key before the defaults are filled.
 */
function withoutDefaults(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodDefault)
    return withoutDefaults(schema.unwrap() as z.ZodType)
      .optional()
      .meta({ default: schema.def.defaultValue });
  if (schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional) return withoutDefaults(schema.unwrap() as z.ZodType).optional();
  if (schema instanceof z.ZodObject)
    return z.strictObject(
      Object.fromEntries(Object.entries(schema.shape).map(([key, field]) => [key, withoutDefaults(field as z.ZodType)])),
    );
  return schema;
}

type OptionsShape<S extends z.ZodRawShape> = { [K in keyof S]: z.ZodOptional<z.ZodType<Exclude<z.input<S[K]>, undefined>>> };

/** The keys of a `consumes` block (definition or config) with their checks, defaults left out. */
export const deliveryOptionsShape = (withoutDefaults(deliverySchema) as z.ZodObject).shape as OptionsShape<typeof deliverySchema.shape>;

const DELIVERY_KEYS = ['maxInFlight', 'maxInFlightPerPartition', 'partitionsConsumedConcurrently', 'maxMessageBytes'] as const;

/** `over` on top of `under`, key by key, ignoring keys that are absent or undefined (other keys of the objects are left out). */
export function mergeDeliveryOptions(under: DeliveryOptions, over: DeliveryOptions): DeliveryOptions {
  const defined = <T extends object>(o: T | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const out: DeliveryOptions = {};
  for (const key of DELIVERY_KEYS) {
    const value = over[key] ?? under[key];
    if (value !== undefined) out[key] = value;
  }
  const pipelineSends = over.pipelineSends ?? under.pipelineSends;
  if (pipelineSends !== undefined) out.pipelineSends = pipelineSends;
  if (under.retry || over.retry) out.retry = { ...defined(under.retry), ...defined(over.retry) };
  if (under.commit || over.commit) out.commit = { ...defined(under.commit), ...defined(over.commit) };
  if (under.concurrency || over.concurrency) out.concurrency = { ...defined(under.concurrency), ...defined(over.concurrency) };
  return out;
}

/** Checks across fields of one `consumes` block, reported through `issue` with paths relative to the block. */
export function checkDelivery(value: DeliveryOptions, issue: (path: (string | number)[], message: string) => void): void {
  const { retry, maxInFlight, maxInFlightPerPartition, concurrency } = value;
  if (concurrency?.threads !== undefined && concurrency.maxInFlight !== undefined && concurrency.maxInFlight < concurrency.threads) {
    issue(
      ['concurrency', 'maxInFlight'],
      `must be at least concurrency.threads (${concurrency.threads}), or threads would wait for work; got ${concurrency.maxInFlight}`,
    );
  }
  if (retry?.initialDelayMs !== undefined && retry.maxDelayMs !== undefined && retry.maxDelayMs < retry.initialDelayMs) {
    issue(['retry', 'maxDelayMs'], `must be at least retry.initialDelayMs (${retry.initialDelayMs}), got ${retry.maxDelayMs}`);
  }
  if (maxInFlight !== undefined && maxInFlightPerPartition !== undefined && maxInFlightPerPartition > maxInFlight) {
    issue(['maxInFlightPerPartition'], `must be at most maxInFlight (${maxInFlight}), got ${maxInFlightPerPartition}`);
  }
}

/** A definition's delivery keys, checked as a config entry's `consumes` is (its topics and group are checked apart). */
export const deliveryOptionsSchema = z
  .strictObject(deliveryOptionsShape)
  .superRefine((value, ctx) => checkDelivery(value, (path, message) => ctx.addIssue({ code: 'custom', path, message, input: value })));

/** Delivery settings with defaults filled (deliverySchema) and limits made consistent. */
export function deliverySettings(delivery: DeliveryOptions = {}): DeliverySettings {
  const result = deliverySchema.safeParse(mergeDeliveryOptions({}, delivery));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`Invalid delivery settings: ${issue.path.join('.') || 'consumes'}: ${issue.message}.`);
  }
  const { concurrency: _pool, ...settings } = result.data;
  return {
    ...settings,
    // A limit given alone can make a default contradict it: the default gives way.
    retry: { ...settings.retry, maxDelayMs: Math.max(settings.retry.maxDelayMs, settings.retry.initialDelayMs) },
    maxInFlightPerPartition: Math.min(settings.maxInFlightPerPartition, settings.maxInFlight),
  };
}

/** What a consumer does when neither its definition nor the config says otherwise. */
export const DELIVERY_DEFAULTS: Readonly<DeliverySettings> = deliverySettings();
