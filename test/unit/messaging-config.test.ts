import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { ConfigError } from '../../src/errors.js';
import { DELIVERY_DEFAULTS as DEFAULTS, deliverySettings } from '../../src/delivery.js';
import { compiled } from '../../src/paths.js';

const fixtures = resolve(__dirname, '../fixtures/services');
const dir = mkdtempSync(join(tmpdir(), 'wharf-messaging-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const echo = (consumes: Record<string, unknown>) => ({ services: [{ module: 'echo.mjs', consumes }] });

async function failure(raw: unknown, base = fixtures): Promise<ConfigError> {
  const error = await (async () => loadServices(parseConfig(raw, 'test.json', base)))().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

/** A compiled service module in a temp folder, importing wharf from dist/ as users' modules do. */
function definition(name: string, body: string): string {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(
    file,
    `import { defineService } from ${JSON.stringify(pathToFileURL(compiled('src/service.js')).href)};\nexport default defineService(${body});\n`,
  );
  return file;
}

describe('delivery settings in the config name the field', () => {
  it.each([
    [
      'attempts 0',
      { retry: { attempts: 0 } },
      'services[0].consumes.retry.attempts must be at least 1, got 0',
      'services[0].consumes.retry.attempts',
    ],
    [
      'attempts 101',
      { retry: { attempts: 101 } },
      'services[0].consumes.retry.attempts must be at most 100, got 101',
      'services[0].consumes.retry.attempts',
    ],
    [
      'attempts 1.5',
      { retry: { attempts: 1.5 } },
      'services[0].consumes.retry.attempts must be a whole number, got 1.5',
      'services[0].consumes.retry.attempts',
    ],
    [
      'a negative delay',
      { retry: { initialDelayMs: -1 } },
      'services[0].consumes.retry.initialDelayMs must be at least 0, got -1',
      'services[0].consumes.retry.initialDelayMs',
    ],
    [
      'max below initial',
      { retry: { initialDelayMs: 500, maxDelayMs: 100 } },
      'services[0].consumes.retry.maxDelayMs: must be at least retry.initialDelayMs (500), got 100',
      'services[0].consumes.retry.maxDelayMs',
    ],
    [
      'a misspelt retry key',
      { retry: { tries: 3 } },
      'unknown key "services[0].consumes.retry.tries": remove it or check the spelling',
      'services[0].consumes.retry',
    ],
    [
      'a commit interval too short',
      { commit: { intervalMs: 5 } },
      'services[0].consumes.commit.intervalMs must be at least 10, got 5',
      'services[0].consumes.commit.intervalMs',
    ],
    [
      'a commit threshold of 0',
      { commit: { threshold: 0 } },
      'services[0].consumes.commit.threshold must be at least 1, got 0',
      'services[0].consumes.commit.threshold',
    ],
    ['maxInFlight 0', { maxInFlight: 0 }, 'services[0].consumes.maxInFlight must be at least 1, got 0', 'services[0].consumes.maxInFlight'],
    [
      'maxInFlight as text',
      { maxInFlight: 'many' },
      'services[0].consumes.maxInFlight must be a number, got "many"',
      'services[0].consumes.maxInFlight',
    ],
    [
      'per partition above the worker',
      { maxInFlight: 10, maxInFlightPerPartition: 20 },
      'services[0].consumes.maxInFlightPerPartition: must be at most maxInFlight (10), got 20',
      'services[0].consumes.maxInFlightPerPartition',
    ],
    [
      'per partition 0',
      { maxInFlightPerPartition: 0 },
      'services[0].consumes.maxInFlightPerPartition must be at least 1, got 0',
      'services[0].consumes.maxInFlightPerPartition',
    ],
    [
      'no concurrency',
      { partitionsConsumedConcurrently: 0 },
      'services[0].consumes.partitionsConsumedConcurrently must be at least 1, got 0',
      'services[0].consumes.partitionsConsumedConcurrently',
    ],
    [
      'a size limit of 0',
      { maxMessageBytes: 0 },
      'services[0].consumes.maxMessageBytes must be at least 1, got 0',
      'services[0].consumes.maxMessageBytes',
    ],
    [
      'a size limit over 100 MiB',
      { maxMessageBytes: 200 * 1024 * 1024 },
      'services[0].consumes.maxMessageBytes must be at most 104857600, got 209715200',
      'services[0].consumes.maxMessageBytes',
    ],
    [
      'pipelined sends as text',
      { pipelineSends: 'no' },
      'services[0].consumes.pipelineSends must be a boolean, got "no"',
      'services[0].consumes.pipelineSends',
    ],
  ])('%s', async (_, consumes, message, field) => {
    const error = await failure(echo(consumes));
    expect(error.message).toBe(`Invalid config (test.json): ${message}.`);
    expect(error.context.field).toBe(field);
  });
});

describe('definitions are checked like the config', () => {
  it.each([
    [
      'retry attempts',
      `{ name: 'd1', consumes: { topics: ['t'], retry: { attempts: 0 } }, handler() {} }`,
      'Invalid service services[0] (the definition of "d1"): consumes.retry.attempts must be at least 1, got 0.',
      'services[0].consumes.retry.attempts',
    ],
    [
      'a misspelt key',
      `{ name: 'd2', consumes: { topics: ['t'], retries: 3 }, handler() {} }`,
      'Invalid service services[0] (the definition of "d2"): unknown key "consumes.retries": remove it or check the spelling.',
      'services[0].consumes',
    ],
    [
      'limits that contradict',
      `{ name: 'd3', consumes: { topics: ['t'], maxInFlight: 5, maxInFlightPerPartition: 6 }, handler() {} }`,
      'Invalid service services[0] (the definition of "d3"): consumes.maxInFlightPerPartition: must be at most maxInFlight (5), got 6.',
      'services[0].consumes.maxInFlightPerPartition',
    ],
    [
      'a schema that is none',
      `{ name: 'd4', consumes: { topics: ['t'] }, schema: { parse() {} }, handler() {} }`,
      'Invalid service services[0].schema: must be a Standard Schema (a zod schema such as z.object({...}), valibot, arktype…).',
      'services[0].schema',
    ],
    [
      'an unknown codec',
      `{ name: 'd5', consumes: { topics: ['t'] }, codec: 'xml', handler() {} }`,
      'Invalid service services[0].codec: must be "json", "raw" or a codec object {name, contentType, encode, decode}, got "xml".',
      'services[0].codec',
    ],
    [
      'a request timeout of 0',
      `{ name: 'd6', producer: { tick() {} }, requestTimeoutMs: 0 }`,
      'Invalid service services[0].requestTimeoutMs: must be a whole number of milliseconds of at least 1, got 0.',
      'services[0].requestTimeoutMs',
    ],
  ])('%s', async (name, body, message, field) => {
    const error = await failure({ services: [{ module: definition(name.replace(/\W/g, '-'), body) }] }, dir);
    expect(error.message).toBe(message);
    expect(error.context.field).toBe(field);
  });
});

describe('delivery settings', () => {
  it('take the config over the definition, key by key, and defaults for the rest', async () => {
    const module = definition(
      'layered',
      `{ name: 'layered', consumes: { topics: ['t'], retry: { attempts: 5, initialDelayMs: 10 }, maxInFlight: 50, commit: { threshold: 7 } }, handler() {} }`,
    );
    const [service] = await loadServices(
      parseConfig({ services: [{ module, consumes: { retry: { initialDelayMs: 20 }, maxMessageBytes: 1000 } }] }, 'test.json', dir),
    );
    expect(service!.consumes!.delivery).toEqual({
      retry: { attempts: 5, initialDelayMs: 20 },
      commit: { threshold: 7 },
      maxInFlight: 50,
      maxMessageBytes: 1000,
    });
    expect(deliverySettings(service!.consumes!.delivery)).toEqual({
      retry: { attempts: 5, initialDelayMs: 20, maxDelayMs: DEFAULTS.retry.maxDelayMs },
      commit: { intervalMs: DEFAULTS.commit.intervalMs, threshold: 7 },
      maxInFlight: 50,
      // The default per-partition window (250) gives way to a smaller worker window.
      maxInFlightPerPartition: 50,
      partitionsConsumedConcurrently: DEFAULTS.partitionsConsumedConcurrently,
      maxMessageBytes: 1000,
      pipelineSends: true,
    });
  });

  it('default to 3 attempts, commits every second or 10,000 messages, 1,000 in flight and a 1 MiB size limit', () => {
    expect(deliverySettings()).toEqual({
      retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 2_000 },
      commit: { intervalMs: 1_000, threshold: 10_000 },
      maxInFlight: 1_000,
      maxInFlightPerPartition: 250,
      partitionsConsumedConcurrently: 16,
      maxMessageBytes: 1_048_576,
      pipelineSends: true,
    });
    // A long first delay alone raises the cap instead of contradicting it.
    expect(deliverySettings({ retry: { initialDelayMs: 5_000 } }).retry).toEqual({ attempts: 3, initialDelayMs: 5_000, maxDelayMs: 5_000 });
  });
});
