import { z } from 'zod';

/**
 * The one configuration schema (file < env < flags, see load.ts). Every object is strict, so a
 * misspelt key is an error that names it instead of a setting silently ignored.
 */
const ms = (min: number) => z.number().int().min(min);

export const serviceEntrySchema = z.strictObject({
  /** Path of the compiled service module, relative to the config file. */
  module: z.string().min(1),
  workers: z
    .strictObject({
      consumer: z.number().int().min(1).optional(),
      producer: z.number().int().min(0).optional(),
    })
    .optional(),
  /** Overrides of what the service consumes, to run one service module against other topics. */
  consumes: z
    .strictObject({
      topics: z.array(z.string().min(1)).min(1).optional(),
      groupId: z.string().min(1).optional(),
    })
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
  services: z.array(serviceEntrySchema).min(1),
  supervisor: supervisorSchema.optional(),
  kafka: z
    .strictObject({
      clientId: z.string().min(1).optional(),
      sessionTimeoutMs: ms(6_000).optional(),
    })
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
  consumes: { topics?: string[]; groupId?: string };
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
} satisfies Omit<WharfConfig, 'source' | 'services' | 'overrides'>;
