import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { ConfigError } from '../../src/errors.js';
import { orderingKey, poolSettings } from '../../src/pool/settings.js';

const fixtures = resolve(__dirname, '../fixtures/services');

async function failure(raw: unknown): Promise<ConfigError> {
  const error = await (async () => loadServices(parseConfig(raw, 'test.json', fixtures)))().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

const withPool = (concurrency: unknown) => ({ services: [{ module: 'echo.mjs', consumes: { concurrency } }] });

describe('consumes.concurrency: config validation names the field', () => {
  it.each([
    ['no threads', { threads: 0 }, 'services[0].consumes.concurrency.threads must be at least 1, got 0'],
    ['a fraction of a thread', { threads: 1.5 }, 'services[0].consumes.concurrency.threads must be a whole number, got 1.5'],
    ['too many threads', { threads: 1_000 }, 'services[0].consumes.concurrency.threads must be at most 256, got 1000'],
    [
      'an unknown mode',
      { mode: 'random' },
      'services[0].consumes.concurrency.mode: Invalid option: expected one of "key"|"partition"|"unordered"',
    ],
    ['no room in flight', { maxInFlight: 0 }, 'services[0].consumes.concurrency.maxInFlight must be at least 1, got 0'],
    [
      'fewer in flight than threads',
      { threads: 4, maxInFlight: 2 },
      'services[0].consumes.concurrency.maxInFlight: must be at least concurrency.threads (4), or threads would wait for work; got 2',
    ],
    ['a misspelt key', { thread: 4 }, 'unknown key "services[0].consumes.concurrency.thread"'],
    ['not an object', 4, 'services[0].consumes.concurrency must be a object, got 4'],
  ])('%s', async (_, concurrency, message) => {
    const error = await failure(withPool(concurrency));
    expect(error.message).toContain(message);
    expect(error.message.split('\n')).toHaveLength(1);
  });

  it('in a service definition, naming the service', async () => {
    const error = await failure({ services: [{ module: 'pool-bad.mjs' }] });
    expect(error.message).toBe(
      'Invalid service services[0] (the definition of "pool-bad"): consumes.concurrency.threads must be at least 1, got 0.',
    );
    expect(error.context.field).toBe('services[0].consumes.concurrency.threads');
  });

  it('the config overrides the definition key by key, and workers get the result', async () => {
    const [service] = await loadServices(
      parseConfig({ services: [{ module: 'pool-order.mjs', consumes: { concurrency: { threads: 3 } } }] }, 'test.json', fixtures),
    );
    expect(service!.consumes!.delivery.concurrency).toEqual({ mode: 'key', threads: 3 });
  });
});

describe('pool settings', () => {
  it('fill in the mode, threads from the CPUs and the window from consumes.maxInFlight', () => {
    expect(poolSettings({}, 1_000, 8)).toEqual({ mode: 'key', threads: 8, maxInFlight: 1_000 });
    expect(poolSettings({ mode: 'unordered', threads: 2, maxInFlight: 50 }, 1_000, 8)).toEqual({
      mode: 'unordered',
      threads: 2,
      maxInFlight: 50,
    });
    // A default window smaller than the pool grows to it.
    expect(poolSettings({ threads: 16 }, 10, 8).maxInFlight).toBe(16);
  });

  it('order by key within a partition, by partition, or not at all', () => {
    const k = (key: string | null, partition = 0) => orderingKey('key', 't', partition, key === null ? null : Buffer.from(key));
    expect(k('a')).toBe(k('a'));
    expect(k('a')).not.toBe(k('b'));
    expect(k('a', 0)).not.toBe(k('a', 1));
    // Keyless messages keep their partition's order among themselves, apart from a key spelt "-".
    expect(k(null)).toBe(k(null));
    expect(k(null)).not.toBe(k('-'));
    expect(orderingKey('partition', 't', 0, Buffer.from('a'))).toBe(orderingKey('partition', 't', 0, Buffer.from('b')));
    expect(orderingKey('unordered', 't', 0, Buffer.from('a'))).toBeUndefined();
  });
});
