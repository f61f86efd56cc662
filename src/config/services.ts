import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.js';
import { isDefinedService, type DefinedService, type TopicSpec } from '../service.js';
import type { ServiceEntry, WharfConfig } from './schema.js';

/** A config entry with its definition loaded and checked, and its worker counts settled. */
export interface LoadedService {
  name: string;
  entry: ServiceEntry;
  definition: DefinedService;
  workers: { consumer: number; producer: number };
  rate: number;
  /** What the consumer role subscribes to: the definition's, with the config's overrides. */
  consumes: { topics: string[]; groupId: string; fromBeginning: boolean } | null;
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

function checkDefinition(d: DefinedService, index: number): void {
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(d.name)) fail(index, 'name', `must be a name of letters, digits, ".", "_" or "-", got ${JSON.stringify(d.name)}`);
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
    if (!consumes && entry.workers.consumer > 0) fail(index, 'workers.consumer', `service "${definition.name}" consumes nothing`);
    if (!produces && entry.workers.producer > 0) fail(index, 'workers.producer', `service "${definition.name}" has no producer role`);
    services.push({
      name: definition.name,
      entry,
      definition,
      workers: {
        consumer: consumes ? (config.overrides.workers ?? Math.max(entry.workers.consumer, 1)) : 0,
        producer: produces ? (entry.workers.producer < 0 ? 1 : entry.workers.producer) : 0,
      },
      rate: config.overrides.rate ?? entry.rate ?? definition.producer?.defaultRate ?? 1,
      consumes: definition.consumes
        ? {
            topics: entry.consumes.topics ?? definition.consumes.topics,
            groupId: entry.consumes.groupId ?? definition.consumes.groupId ?? definition.name,
            fromBeginning: definition.consumes.fromBeginning ?? true,
          }
        : null,
      topics: (definition.topics ?? []).map((t) => (typeof t === 'string' ? { topic: t } : t)),
    });
  }
  return services;
}
