import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type WharfConfig } from './schema.js';
import { demoConfig } from './demo.js';
import { DEFAULT_HTTP_ADDRESS, HTTP_ADDRESS_RULE, parseHttpAddress } from '../http/address.js';

/** Flags of `wharf start` that override the file. */
export interface ConfigFlags {
  config?: string;
  /** Consumer workers for every service that consumes. */
  workers?: number;
  /** Producer ticks per second for every service that produces. */
  rate?: number;
  /** The HTTP listener: HOST:PORT or "off" (checked as the config's `http`). */
  http?: string;
}

export const CONFIG_FILES = ['wharf.config.json', 'wharf.config.js', 'wharf.config.mjs'] as const;

/** "services[0].workers.consumer" */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** One message naming the field, what it must be and what was found. */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const where = fieldPath(issue.path);
  const found = issue.path.reduce<unknown>((value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key], input);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${where ? `${where}.` : ''}${k}"`).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling`;
    case 'too_small':
      return `${where} must be ${issue.origin === 'array' ? `a list of at least ${issue.minimum}` : `at least ${issue.minimum}`}, got ${JSON.stringify(found)}`;
    case 'too_big':
      return `${where} must be at most ${issue.maximum}, got ${JSON.stringify(found)}`;
    case 'invalid_type':
      return found === undefined
        ? `${where} is required (${issue.expected})`
        : `${where} must be ${issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`}, got ${JSON.stringify(found)}`;
    default:
      return `${where || 'config'}: ${issue.message}`;
  }
}

async function readFile(file: string): Promise<unknown> {
  const extension = extname(file);
  if (extension === '.json') {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`Config ${file} is not valid JSON: ${(error as Error).message}.`, { cause: error });
    }
  }
  if (extension === '.js' || extension === '.mjs') {
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    return module.default;
  }
  if (extension === '.ts' || extension === '.mts') {
    throw new ConfigError(`Config ${file} is TypeScript: compile it with tsc and pass the .js file, or write wharf.config.json.`);
  }
  throw new ConfigError(`Config ${file} must be .json, .js or .mjs.`);
}

/** Validates raw config and fills defaults (the schema's); module paths resolve against `baseDir`. */
export function parseConfig(raw: unknown, source: string, baseDir: string, flags: Omit<ConfigFlags, 'config'> = {}): WharfConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    // Every problem at once, each with its path: fixing one at a time and restarting is slow.
    const { issues } = result.error;
    const described = issues.map((issue) => describeIssue(issue, raw));
    const message = described.length === 1 ? described[0] : `${described.length} problems: ${described.join('; ')}`;
    throw new ConfigError(`Invalid config (${source}): ${message}.`, {
      context: { field: fieldPath(issues[0]!.path), fields: issues.map((issue) => fieldPath(issue.path)) },
    });
  }
  const { $schema: _editor, ...config } = result.data;
  return {
    ...config,
    source,
    services: config.services.map((entry) => ({
      ...entry,
      module: isAbsolute(entry.module) ? entry.module : resolve(baseDir, entry.module),
    })),
    overrides: { workers: flags.workers, rate: flags.rate },
    http: httpSettings(flags.http, config.http),
    tracing: config.tracing && { module: tracingModule(config.tracing.module, baseDir) },
  };
}

/** The config's `tracing.module` as an absolute path, checked here rather than in every worker thread. */
function tracingModule(path: string, baseDir: string): string {
  const absolute = isAbsolute(path) ? path : resolve(baseDir, path);
  const fail = (why: string) => {
    throw new ConfigError(`Invalid config: tracing.module ${why}.`, { context: { field: 'tracing.module' } });
  };
  if (!['.js', '.mjs', '.cjs'].includes(extname(absolute))) fail(`must be a compiled .js or .mjs file, got ${absolute}`);
  if (!existsSync(absolute)) fail(`${absolute} does not exist (paths are relative to the config file)`);
  return absolute;
}

/** `--http` over the file's `http` over 127.0.0.1:9464. */
function httpSettings(flag: string | undefined, file: string | undefined): WharfConfig['http'] {
  const text = flag ?? file;
  const address = parseHttpAddress(text ?? DEFAULT_HTTP_ADDRESS);
  if (address === undefined) throw new ConfigError(`--http must be ${HTTP_ADDRESS_RULE}; got "${text}".`, { context: { field: 'http' } });
  return address && { ...address, explicit: text !== undefined };
}

/**
 * The config for `wharf start`: `--config FILE`, else a wharf.config.* in `cwd`, else the
 * built-in demo; then flags on top.
 */
export async function loadConfig(flags: ConfigFlags = {}, cwd = process.cwd()): Promise<WharfConfig> {
  const file = flags.config ? resolve(cwd, flags.config) : CONFIG_FILES.map((name) => resolve(cwd, name)).find((path) => existsSync(path));
  if (flags.config && !existsSync(file!)) throw new ConfigError(`Config file ${file} does not exist.`);
  if (!file) return parseConfig(demoConfig(), 'built-in demo (Tony ↔ Jarvis)', cwd, flags);
  return parseConfig(await readFile(file), file, dirname(file), flags);
}
