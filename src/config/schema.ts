import { z } from 'zod';
import { WharfError } from '../errors.js';
import { DELIVERY_DEFAULTS, mergeDeliveryOptions, type DeliveryOptions, type DeliverySettings } from '../delivery.js';
import { topicNameSchema } from '../kafka/topic-name.js';
import { HTTP_ADDRESS_RULE, parseHttpAddress, type HttpAddress } from '../http/address.js';

export { mergeDeliveryOptions, type DeliveryOptions, type DeliverySettings };

/**
 * The one configuration schema (file < env < flags, see load.ts). Every object is strict, so a
 * misspelt key is an error that names it instead of a setting silently ignored.
 */
const ms = (min: number) => z.number().int().min(min);

/**
 * How a service consumes (src/kafka/consumer-runner.ts): retries, commit batching, backpressure
 * and the inbound size limit. The same keys go in a definition's `consumes` and in a config
 * entry's `consumes`; the config wins, then the definition, then DEFAULTS.delivery.
 */
export const deliveryShape = {
  retry: z
    .strictObject({
      /** Handler attempts before a message is dead-lettered (1: no retries). */
      attempts: z.number().int().min(1).max(100).optional(),
      initialDelayMs: ms(0).optional(),
      maxDelayMs: ms(0).optional(),
    })
    .optional(),
  commit: z
    .strictObject({
      /** Offsets handled are committed at least this often… */
      intervalMs: ms(10).optional(),
      /** …and as soon as this many are waiting. */
      threshold: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Messages fetched but not finished, per worker; above it every partition is paused. */
  maxInFlight: z.number().int().min(1).max(1_000_000).optional(),
  /** The same per partition, so one stuck partition cannot take the whole budget. */
  maxInFlightPerPartition: z.number().int().min(1).max(1_000_000).optional(),
  /** Handlers running at once per worker (each partition stays in order). */
  partitionsConsumedConcurrently: z.number().int().min(1).max(1_000).optional(),
  /** Values bigger than this go to the dead-letter topic unread. */
  maxMessageBytes: z
    .number()
    .int()
    .min(1)
    .max(100 * 1024 * 1024)
    .optional(),
  /** The next message of a partition may start while the previous one's sends are under way (docs/messaging.md); false: one at a time. */
  pipelineSends: z.boolean().optional(),
  /**
   * Run the handler in a pool of threads per consumer worker (src/pool/, docs/pool.md), keeping
   * order per key, per partition or none; defaults in src/pool/settings.ts.
   */
  concurrency: z
    .strictObject({
      mode: z.enum(['key', 'partition', 'unordered']).optional(),
      threads: z.number().int().min(1).max(256).optional(),
      maxInFlight: z.number().int().min(1).max(1_000_000).optional(),
    })
    .optional(),
};

/** Checks across fields of one `consumes` block, reported through `issue` with paths relative to the block. */
export function checkDelivery(
  value: {
    retry?: { initialDelayMs?: number; maxDelayMs?: number };
    maxInFlight?: number;
    maxInFlightPerPartition?: number;
    concurrency?: { threads?: number; maxInFlight?: number };
  },
  issue: (path: (string | number)[], message: string) => void,
): void {
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

/**
 * How many workers of one role a service may run: the one limit of the config file, the
 * `--workers` flags, `admin scale` (CLI, admin protocol) and `supervisor.scale`. A service
 * that consumes keeps at least one consumer; a producer role can be scaled to none.
 */
export const WORKER_LIMITS = {
  consumer: { min: 1, max: 64 },
  producer: { min: 0, max: 64 },
} as const satisfies Record<'consumer' | 'producer', { min: number; max: number }>;

export const workerCountSchema = (role: keyof typeof WORKER_LIMITS) =>
  z.number().int().min(WORKER_LIMITS[role].min).max(WORKER_LIMITS[role].max);

/** A scale request outside WORKER_LIMITS (ERR_BAD_SCALE), or undefined when the count is within them. */
export function workerCountError(service: string, role: keyof typeof WORKER_LIMITS, count: number): WharfError | undefined {
  const { min, max } = WORKER_LIMITS[role];
  if (Number.isInteger(count) && count >= min && count <= max) return undefined;
  return new WharfError('ERR_BAD_SCALE', `${role} workers of ${service} must be a whole number from ${min} to ${max}; got ${count}.`, {
    context: { service, role, count },
  });
}

export const serviceEntrySchema = z.strictObject({
  /** Path of the compiled service module, relative to the config file. */
  module: z.string().min(1),
  workers: z
    .strictObject({
      consumer: workerCountSchema('consumer').optional(),
      producer: workerCountSchema('producer').optional(),
    })
    .optional(),
  /** Overrides of what the service consumes, to run one service module against other topics. */
  consumes: z
    .strictObject({
      topics: z.array(topicNameSchema).min(1).optional(),
      groupId: z.string().min(1).optional(),
      ...deliveryShape,
    })
    .superRefine((value, ctx) => checkDelivery(value, (path, message) => ctx.addIssue({ code: 'custom', path, message, input: value })))
    .optional(),
  /** Producer ticks per second. */
  rate: z.number().positive().max(1_000_000).optional(),
  options: z.record(z.string(), z.unknown()).optional(),
});

export const supervisorSchema = z.strictObject({
  heartbeatIntervalMs: ms(50).optional(),
  /** Silence after which a worker counts as blocked and is replaced. */
  heartbeatTimeoutMs: ms(200).optional(),
  readyTimeoutMs: ms(100).optional(),
  drainTimeoutMs: ms(100).optional(),
  restart: z
    .strictObject({
      initialDelayMs: ms(0).optional(),
      maxDelayMs: ms(0).optional(),
      /** Crashes within `windowMs` after which a service is given up on. */
      maxRestarts: z.number().int().min(0).optional(),
      windowMs: ms(100).optional(),
    })
    .optional(),
  resourceLimits: z
    .strictObject({
      maxOldGenerationSizeMb: z.number().int().min(16).optional(),
      maxYoungGenerationSizeMb: z.number().int().min(1).optional(),
    })
    .optional(),
});

export const configSchema = z.strictObject({
  /** Where an editor finds this schema, e.g. "./node_modules/wharf/docs/wharf.config.schema.json"; wharf ignores it. */
  $schema: z.string().optional(),
  services: z.array(serviceEntrySchema).min(1),
  supervisor: supervisorSchema.optional(),
  kafka: z
    .strictObject({
      clientId: z.string().min(1).optional(),
      sessionTimeoutMs: ms(6_000).optional(),
    })
    .optional(),
  /** Shared objects backed by a compacted changelog topic (see docs/state.md, Persistence). */
  state: z
    .strictObject({
      /** Names, `prefix*` or `*`. */
      persist: z.array(z.string().min(1)).optional(),
      topic: topicNameSchema.optional(),
      lingerMs: ms(0).optional(),
    })
    .optional(),
  /**
   * OpenTelemetry traces: `module` (a compiled .js/.mjs path, relative to the config file) is
   * imported by every worker thread before its service, to register an SDK and exporter there
   * (docs/observability.md, Traces). Without it wharf makes no spans.
   */
  tracing: z.strictObject({ module: z.string().min(1) }).optional(),
  /** The supervisor's HTTP listener (`/metrics`): HOST:PORT (port 0: a free one) or "off"; default 127.0.0.1:9464. */
  http: z
    .string()
    .refine((text) => parseHttpAddress(text) !== undefined, { message: `must be ${HTTP_ADDRESS_RULE}` })
    .optional(),
});

export type ConfigInput = z.input<typeof configSchema>;

/** The filled-in form: every default applied. */
export interface SupervisorSettings {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  restart: { initialDelayMs: number; maxDelayMs: number; maxRestarts: number; windowMs: number };
  resourceLimits: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb?: number };
}

export interface ServiceEntry {
  /** Absolute path of the module. */
  module: string;
  workers: { consumer: number; producer: number };
  rate?: number;
  consumes: { topics?: string[]; groupId?: string } & DeliveryOptions;
  options: Record<string, unknown>;
}

export interface WharfConfig {
  /** Where the config came from (a file path, or "built-in demo"). */
  source: string;
  services: ServiceEntry[];
  supervisor: SupervisorSettings;
  kafka: { clientId: string; sessionTimeoutMs: number };
  /** Flags that apply to every service: consumer workers of those that consume, rate of those that produce. */
  overrides: { workers?: number; rate?: number };
  state: { persist?: string[]; topic?: string; lingerMs?: number };
  /** Where the HTTP listener listens, null when off; `explicit` false for the default, which moves to a free port when taken. */
  http: (HttpAddress & { explicit: boolean }) | null;
  /** The config's `tracing`, its module an absolute path (parseConfig checks that it exists). */
  tracing?: { module: string };
}

export const DEFAULTS = {
  supervisor: {
    heartbeatIntervalMs: 1_000,
    heartbeatTimeoutMs: 10_000,
    readyTimeoutMs: 60_000,
    drainTimeoutMs: 30_000,
    restart: { initialDelayMs: 200, maxDelayMs: 10_000, maxRestarts: 5, windowMs: 60_000 },
    resourceLimits: { maxOldGenerationSizeMb: 512 },
  },
  kafka: { clientId: 'wharf', sessionTimeoutMs: 10_000 },
  delivery: DELIVERY_DEFAULTS,
  /** ctx.request's deadline when the call and the definition name none. */
  requestTimeoutMs: 30_000,
} satisfies Omit<WharfConfig, 'source' | 'services' | 'overrides' | 'state' | 'http'> & {
  delivery: DeliverySettings;
  requestTimeoutMs: number;
};

/**
 * The config file's JSON Schema, from the zod schema (what an editor completes and checks
 * `wharf.config.json` with). Written to docs/wharf.config.schema.json by
 * `node dist/scripts/config-schema.js`; a test keeps the file equal to this.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'wharf config (wharf.config.json)',
  };
}
