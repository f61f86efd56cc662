import { z } from 'zod';
import { WharfError } from '../errors.js';
import { checkDelivery, deliveryOptionsShape, mergeDeliveryOptions, type DeliveryOptions, type DeliverySettings } from '../delivery.js';
import { topicNameSchema } from '../kafka/topic-name.js';
import { HTTP_ADDRESS_RULE, parseHttpAddress, type HttpAddress } from '../http/address.js';

export { mergeDeliveryOptions, type DeliveryOptions, type DeliverySettings };

/**
 * The one configuration schema (file < env < flags, see load.ts), and the one place its defaults
 * are declared (`.default`): the types below are derived from it. Every object is strict, so a
 * misspelt key is an error that names it instead of a setting silently ignored.
 */
const ms = (min: number) => z.number().int().min(min);

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
  /** Absent: 1 consumer worker if the service consumes, 1 producer worker if it produces (settled in services.ts, which loads the module). */
  workers: z
    .strictObject({
      consumer: workerCountSchema('consumer').optional(),
      producer: workerCountSchema('producer').optional(),
    })
    .optional(),
  /**
   * Overrides of what the service consumes, to run one service module against other topics, and
   * of how (src/delivery.ts): the config wins, then the definition, then the delivery defaults.
   */
  consumes: z
    .strictObject({
      topics: z.array(topicNameSchema).min(1).optional(),
      groupId: z.string().min(1).optional(),
      ...deliveryOptionsShape,
    })
    .superRefine((value, ctx) => checkDelivery(value, (path, message) => ctx.addIssue({ code: 'custom', path, message, input: value })))
    .prefault({}),
  /** Producer ticks per second; absent: the producer's `defaultRate`, else 1. */
  rate: z.number().positive().max(1_000_000).optional(),
  options: z.record(z.string(), z.unknown()).prefault({}),
});

export const supervisorSchema = z.strictObject({
  heartbeatIntervalMs: ms(50).default(1_000),
  /** Silence after which a worker counts as blocked and is replaced. */
  heartbeatTimeoutMs: ms(200).default(10_000),
  readyTimeoutMs: ms(100).default(60_000),
  drainTimeoutMs: ms(100).default(30_000),
  restart: z
    .strictObject({
      initialDelayMs: ms(0).default(200),
      maxDelayMs: ms(0).default(10_000),
      /** Crashes within `windowMs` after which a service is given up on. */
      maxRestarts: z.number().int().min(0).default(5),
      windowMs: ms(100).default(60_000),
    })
    .prefault({}),
  resourceLimits: z
    .strictObject({
      maxOldGenerationSizeMb: z.number().int().min(16).default(512),
      /**
       * A worker's young generation, where each message's objects are made and die. 64 (V8 makes
       * it two 32 MB semi-spaces) instead of Node's 48 (16 MB): a consumer worker keeps its fetched
       * batches and up to `maxInFlight` messages alive, which a smaller one copies at every
       * scavenge — garbage collection took 27 % of a busy worker's CPU at 48 and 22 % at 64
       * (docs/performance.md). The cost: up to 32 MB more per busy thread.
       */
      maxYoungGenerationSizeMb: z.number().int().min(1).default(64),
    })
    .prefault({}),
});

export const configSchema = z.strictObject({
  /** Where an editor finds this schema, e.g. "./node_modules/wharf/docs/wharf.config.schema.json"; wharf ignores it. */
  $schema: z.string().optional(),
  services: z.array(serviceEntrySchema).min(1),
  supervisor: supervisorSchema.prefault({}),
  kafka: z
    .strictObject({
      clientId: z.string().min(1).default('wharf'),
      sessionTimeoutMs: ms(6_000).default(10_000),
    })
    .prefault({}),
  /** Shared objects backed by a compacted changelog topic (see docs/state.md, Persistence). */
  state: z
    .strictObject({
      /** Names, `prefix*` or `*`. */
      persist: z.array(z.string().min(1)).optional(),
      topic: topicNameSchema.optional(),
      lingerMs: ms(0).optional(),
      /** Partitions of the changelog topic when wharf creates it: a deployment's state is split over them, one owner each (docs/cluster.md). */
      partitions: z.int().min(1).max(1_000).optional(),
    })
    .prefault({}),
  /** A deployment of several supervisors (docs/cluster.md); the environment's WHARF_CLUSTER_* and WHARF_ADMIN_LISTEN win. */
  cluster: z
    .strictObject({
      /** Every supervisor started with the same name shares the persisted state; default: the state topic's name. */
      name: z.string().trim().min(1).max(200).optional(),
      /** Where the other members reach this one's admin socket (HOST:PORT, or a socket path); default: the socket's own address. */
      advertise: z.string().trim().min(1).max(1_000).optional(),
      /** The admin socket on TCP at HOST:PORT (port 0: a free one), where members on other hosts reach it; default: a Unix socket. */
      listen: z
        .string()
        .refine((text) => parseHttpAddress(text) !== undefined && text.trim() !== 'off', { message: 'must be HOST:PORT' })
        .optional(),
    })
    .prefault({}),
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

/** The supervisor's settings, every default applied. */
export type SupervisorSettings = z.output<typeof supervisorSchema>;

/** One entry of `services`, its defaults applied and `module` an absolute path (parseConfig). */
export type ServiceEntry = z.output<typeof serviceEntrySchema>;

/** The config as parseConfig returns it: the schema's output, every default applied. */
export type WharfConfig = Omit<z.output<typeof configSchema>, '$schema' | 'http'> & {
  /** Where the config came from (a file path, or "built-in demo"). */
  source: string;
  /** Flags that apply to every service: consumer workers of those that consume, rate of those that produce. */
  overrides: { workers?: number; rate?: number };
  /** Where the HTTP listener listens, null when off; `explicit` false for the default, which moves to a free port when taken. */
  http: (HttpAddress & { explicit: boolean }) | null;
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
