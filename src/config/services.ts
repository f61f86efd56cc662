import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { isCodec } from '../kafka/codec.js';
import { isMessageSchema } from '../kafka/message-schema.js';
import { isDefinedService, type DefinedService, type TopicSpec } from '../service.js';
import { deliveryOptionsSchema, mergeDeliveryOptions, type DeliveryOptions } from '../delivery.js';
import type { ServiceEntry, WharfConfig } from './schema.js';
import { describeIssue } from './load.js';

/** A config entry with its definition loaded and checked, and its worker counts settled. */
export interface LoadedService {
  name: string;
  entry: ServiceEntry;
  definition: DefinedService;
  workers: { consumer: number; producer: number };
  rate: number;
  /**
   * What the consumer role subscribes to, and how it consumes: the definition's, with the
   * config's overrides (delivery defaults are filled in by the worker, see deliverySettings).
   */
  consumes: { topics: string[]; groupId: string; fromBeginning: boolean; delivery: DeliveryOptions } | null;
  topics: TopicSpec[];
}

function fail(index: number, field: string, message: string): never {
  throw new ConfigError(`Invalid service services[${index}].${field}: ${message}.`, { context: { field: `services[${index}].${field}` } });
}

async function importDefinition(entry: ServiceEntry, index: number): Promise<DefinedService> {
  const path = entry.module;
  if (extname(path) === '.ts') fail(index, 'module', `${path} is TypeScript: compile it and point the config at the .js file`);
  if (!existsSync(path)) fail(index, 'module', `${path} does not exist (paths are relative to the config file)`);
  let module: { default?: unknown };
  try {
    module = await import(pathToFileURL(path).href);
  } catch (error) {
    fail(index, 'module', `${path} failed to load: ${(error as Error).message}`);
  }
  if (!isDefinedService(module.default)) fail(index, 'module', `${path} must have \`export default defineService({...})\``);
  return module.default;
}

/** The delivery keys of a definition's `consumes` (its topics and group are checked above), checked as the config's are. */
function checkDefinitionDelivery(d: DefinedService, index: number): void {
  const { topics: _t, groupId: _g, fromBeginning: _f, ...delivery } = d.consumes ?? { topics: [] };
  const result = deliveryOptionsSchema.safeParse(delivery);
  if (result.success) return;
  const issue = { ...result.error.issues[0]!, path: ['consumes', ...result.error.issues[0]!.path] } as z.core.$ZodIssue;
  const field = issue.path.map(String).join('.');
  throw new ConfigError(
    `Invalid service services[${index}] (the definition of "${d.name}"): ${describeIssue(issue, { consumes: delivery })}.`,
    { context: { field: `services[${index}].${field}` } },
  );
}

function checkDefinition(d: DefinedService, index: number): void {
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(d.name))
    fail(index, 'name', `must be a name of letters, digits, ".", "_" or "-", got ${JSON.stringify(d.name)}`);
  if (d.consumes !== undefined) {
    const topics = d.consumes.topics;
    if (!Array.isArray(topics) || topics.length === 0 || !topics.every((t) => typeof t === 'string' && t.length > 0)) {
      fail(index, 'consumes.topics', `must be a non-empty list of topic names, got ${JSON.stringify(topics)}`);
    }
    if (typeof d.handler !== 'function') fail(index, 'handler', `must be a function (message, ctx) => …, got ${typeof d.handler}`);
  } else if (d.handler !== undefined) {
    fail(index, 'consumes', 'is missing: a service with a handler must say which topics it consumes');
  }
  if (d.producer !== undefined) {
    const { tick, run } = d.producer;
    if (typeof tick !== 'function' && typeof run !== 'function') fail(index, 'producer', 'needs a tick(ctx) or run(ctx) function');
  }
  if (d.consumes === undefined && d.producer === undefined) fail(index, 'module', `service "${d.name}" neither consumes nor produces`);
  if (d.consumes !== undefined) checkDefinitionDelivery(d, index);
  if (d.schema !== undefined && !isMessageSchema(d.schema))
    fail(index, 'schema', 'must be a Standard Schema (a zod schema such as z.object({...}), valibot, arktype…)');
  if (d.codec !== undefined && d.codec !== 'json' && d.codec !== 'raw' && !isCodec(d.codec)) {
    fail(index, 'codec', `must be "json", "raw" or a codec object {name, contentType, encode, decode}, got ${JSON.stringify(d.codec)}`);
  }
  if (d.requestTimeoutMs !== undefined && (!Number.isInteger(d.requestTimeoutMs) || d.requestTimeoutMs < 1)) {
    fail(index, 'requestTimeoutMs', `must be a whole number of milliseconds of at least 1, got ${JSON.stringify(d.requestTimeoutMs)}`);
  }
}

/** The definition's delivery settings with the config's on top, key by key (retry and commit too). */
function mergeDelivery(d: DefinedService, entry: ServiceEntry): DeliveryOptions {
  return mergeDeliveryOptions(d.consumes ?? {}, entry.consumes);
}

export async function loadServices(config: WharfConfig): Promise<LoadedService[]> {
  const services: LoadedService[] = [];
  for (const [index, entry] of config.services.entries()) {
    const definition = await importDefinition(entry, index);
    checkDefinition(definition, index);
    if (services.some((s) => s.name === definition.name)) fail(index, 'name', `"${definition.name}" is defined twice`);
    const consumes = definition.consumes !== undefined;
    const produces = definition.producer !== undefined;
    if (!consumes && entry.consumes.topics) fail(index, 'consumes', `service "${definition.name}" consumes nothing`);
    if (!consumes && entry.workers?.consumer !== undefined)
      fail(index, 'workers.consumer', `service "${definition.name}" consumes nothing`);
    if (!produces && (entry.workers?.producer ?? 0) > 0)
      fail(index, 'workers.producer', `service "${definition.name}" has no producer role`);
    services.push({
      name: definition.name,
      entry,
      definition,
      workers: {
        consumer: consumes ? (config.overrides.workers ?? entry.workers?.consumer ?? 1) : 0,
        producer: produces ? (entry.workers?.producer ?? 1) : 0,
      },
      rate: config.overrides.rate ?? entry.rate ?? definition.producer?.defaultRate ?? 1,
      consumes: definition.consumes
        ? {
            topics: entry.consumes.topics ?? definition.consumes.topics,
            groupId: entry.consumes.groupId ?? definition.consumes.groupId ?? definition.name,
            fromBeginning: definition.consumes.fromBeginning ?? true,
            delivery: mergeDelivery(definition, entry),
          }
        : null,
      topics: (definition.topics ?? []).map((t) => (typeof t === 'string' ? { topic: t } : t)),
    });
  }
  return services;
}
