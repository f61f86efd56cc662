import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { loadServices } from '../../src/config/services.js';
import { ConfigError } from '../../src/errors.js';

const fixtures = resolve(__dirname, '../fixtures/services');
const dir = mkdtempSync(join(tmpdir(), 'wharf-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function load(raw: unknown) {
  return loadServices(parseConfig(raw, 'test.json', fixtures));
}

async function failure(raw: unknown): Promise<ConfigError> {
  const error = await load(raw).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('config validation names the field', () => {
  it.each([
    [
      'workers 0',
      { services: [{ module: 'echo.mjs', workers: { consumer: 0 } }] },
      'services[0].workers.consumer must be at least 1, got 0',
    ],
    [
      'workers -1',
      { services: [{ module: 'echo.mjs', workers: { consumer: -1 } }] },
      'services[0].workers.consumer must be at least 1, got -1',
    ],
    [
      'workers 65',
      { services: [{ module: 'echo.mjs', workers: { consumer: 65 } }] },
      'services[0].workers.consumer must be at most 64, got 65',
    ],
    [
      'producers 65',
      { services: [{ module: 'echo.mjs', workers: { producer: 65 } }] },
      'services[0].workers.producer must be at most 64, got 65',
    ],
    [
      'producers -1',
      { services: [{ module: 'echo.mjs', workers: { producer: -1 } }] },
      'services[0].workers.producer must be at least 0, got -1',
    ],
    [
      'a fraction',
      { services: [{ module: 'echo.mjs', workers: { consumer: 1.5 } }] },
      'services[0].workers.consumer must be a whole number, got 1.5',
    ],
    ['an unknown key', { services: [{ module: 'echo.mjs', wokers: { consumer: 2 } }] }, 'unknown key "services[0].wokers"'],
    ['an unknown top-level key', { services: [{ module: 'echo.mjs' }], supervisr: {} }, 'unknown key "supervisr"'],
    ['a wrong type', { services: [{ module: 'echo.mjs', rate: 'fast' }] }, 'services[0].rate must be a number, got "fast"'],
    ['no services', { services: [] }, 'services must be a list of at least 1'],
    ['a missing module', { services: [{}] }, 'services[0].module is required'],
    [
      'a wrong nested type',
      { services: [{ module: 'echo.mjs' }], supervisor: { drainTimeoutMs: '5s' } },
      'supervisor.drainTimeoutMs must be a number, got "5s"',
    ],
    [
      'a changelog topic that is no topic name',
      { services: [{ module: 'echo.mjs' }], state: { topic: 'my state' } },
      'state.topic: must be a Kafka topic name',
    ],
    ['a misspelt state key', { services: [{ module: 'echo.mjs' }], state: { persits: ['x'] } }, 'unknown key "state.persits"'],
    [
      'an admin address that is no HOST:PORT',
      { services: [{ module: 'echo.mjs' }], cluster: { listen: '7070' } },
      'cluster.listen: must be HOST:PORT',
    ],
    ['an empty deployment name', { services: [{ module: 'echo.mjs' }], cluster: { name: ' ' } }, 'cluster.name'],
  ])('%s', async (_, raw, message) => {
    const error = await failure(raw);
    expect(error.message).toContain(message);
    expect(error.message.split('\n')).toHaveLength(1);
  });

  it('an unknown service module', async () => {
    const error = await failure({ services: [{ module: 'nope.mjs' }] });
    expect(error.message).toMatch(/^Invalid service services\[0\]\.module: .*nope\.mjs does not exist/);
    expect(error.context.field).toBe('services[0].module');
  });

  it('a module without defineService', async () => {
    const error = await failure({ services: [{ module: 'not-defined.mjs' }] });
    expect(error.message).toContain('must have `export default defineService({...})`');
  });

  it('a handler that is not a function', async () => {
    const error = await failure({ services: [{ module: 'no-handler.mjs' }] });
    expect(error.message).toBe('Invalid service services[0].handler: must be a function (message, ctx) => …, got string.');
  });

  it('producer workers for a service that only consumes', async () => {
    const error = await failure({ services: [{ module: 'echo.mjs', workers: { producer: 1 } }] });
    expect(error.message).toContain('services[0].workers.producer: service "echo" has no producer role');
  });

  it('the same service twice', async () => {
    const error = await failure({ services: [{ module: 'echo.mjs' }, { module: 'echo.mjs' }] });
    expect(error.message).toContain('services[1].name: "echo" is defined twice');
  });
});

describe('config loading', () => {
  it('takes a deployment’s settings from the file (docs/cluster.md)', async () => {
    const config = parseConfig(
      { services: [{ module: 'echo.mjs' }], cluster: { name: 'orders', advertise: 'host-a:7070', listen: '0.0.0.0:7070' } },
      'test.json',
      fixtures,
    );
    expect(config.cluster).toEqual({ name: 'orders', advertise: 'host-a:7070', listen: '0.0.0.0:7070' });
    expect(parseConfig({ services: [{ module: 'echo.mjs' }] }, 'test.json', fixtures).cluster).toEqual({});
  });

  it('fills defaults and applies flags on top of the file', async () => {
    const [echo] = await loadServices(
      parseConfig({ services: [{ module: 'echo.mjs', workers: { consumer: 2 } }] }, 'test.json', fixtures, { workers: 5 }),
    );
    expect(echo!.workers).toEqual({ consumer: 5, producer: 0 });
    expect(echo!.entry.module).toBe(join(fixtures, 'echo.mjs'));
  });

  it('reads wharf.config.json from the folder, and falls back to the demo', async () => {
    writeFileSync(
      join(dir, 'wharf.config.json'),
      JSON.stringify({ services: [{ module: join(fixtures, 'echo.mjs') }], supervisor: { drainTimeoutMs: 1234 } }),
    );
    const config = await loadConfig({}, dir);
    expect(config.source).toBe(join(dir, 'wharf.config.json'));
    expect(config.supervisor.drainTimeoutMs).toBe(1234);
    expect(config.supervisor.heartbeatTimeoutMs).toBe(10_000);

    const demo = await loadServices(await loadConfig({}, tmpdir()));
    expect(demo.map((s) => s.name)).toEqual(['jarvis', 'tony']);
  });

  it('says when the file is not JSON, or is TypeScript', async () => {
    writeFileSync(join(dir, 'broken.json'), '{ services: ');
    await expect(loadConfig({ config: join(dir, 'broken.json') }, dir)).rejects.toThrow(/broken\.json is not valid JSON/);
    writeFileSync(join(dir, 'wharf.config.ts'), 'export default {}');
    await expect(loadConfig({ config: 'wharf.config.ts' }, dir)).rejects.toThrow(/is TypeScript: compile it with tsc/);
    await expect(loadConfig({ config: 'missing.json' }, dir)).rejects.toThrow(/missing\.json does not exist/);
  });
});

describe('config validation reports every problem at once', () => {
  it('lists each problem with its path, so one restart is enough to see them all', async () => {
    const error = await failure({
      services: [{ module: 'echo.mjs', workers: { consumer: 0 }, rate: 'fast' }],
      supervisor: { drainTimeoutMs: '5s' },
    });
    expect(error.message).toMatch(/^Invalid config \(test\.json\): 3 problems: /);
    expect(error.message).toContain('services[0].workers.consumer must be at least 1, got 0');
    expect(error.message).toContain('services[0].rate must be a number, got "fast"');
    expect(error.message).toContain('supervisor.drainTimeoutMs must be a number, got "5s"');
    expect(error.context.fields).toEqual(
      expect.arrayContaining(['services[0].workers.consumer', 'services[0].rate', 'supervisor.drainTimeoutMs']),
    );
  });
});
