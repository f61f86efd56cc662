import { describe, expect, it, vi } from 'vitest';
import { BrokerUnavailableError, ConfigError, PrerequisiteError } from '../../src/errors.js';
import { parseBrokerList, resolveBroker } from '../../src/kafka/broker.js';
import { createLogger } from '../../src/log.js';

const logger = createLogger({ level: 'silent' });

/** Probes that record which way was taken; none of them starts anything. */
function probes(docker: boolean) {
  return {
    dockerReachable: vi.fn(async () => docker),
    startContainer: vi.fn(async () => ({ brokers: ['container:9093'], started: true, stop: vi.fn(async () => undefined) })),
    startLocal: vi.fn(async () => ({ brokers: ['127.0.0.1:9092'], started: true, stop: vi.fn(async () => undefined) })),
  };
}

describe('resolveBroker', () => {
  it('uses KAFKA_BROKERS when set, and asks nothing else', async () => {
    const p = probes(true);
    const broker = await resolveBroker({ logger, env: { KAFKA_BROKERS: 'a:9092, b:9093' }, probes: p });
    expect(broker).toMatchObject({ source: 'env', brokers: ['a:9092', 'b:9093'] });
    expect(p.dockerReachable).not.toHaveBeenCalled();
    expect(p.startLocal).not.toHaveBeenCalled();
  });

  it('starts a container when a Docker engine answers', async () => {
    const p = probes(true);
    const broker = await resolveBroker({ logger, env: {}, probes: p });
    expect(broker).toMatchObject({ source: 'testcontainers', brokers: ['container:9093'] });
    expect(p.startLocal).not.toHaveBeenCalled();
  });

  it('falls back to the local broker without Docker', async () => {
    const stop = vi.fn(async () => undefined);
    const p = { ...probes(false), startLocal: vi.fn(async () => ({ brokers: ['127.0.0.1:9092'], started: true, stop })) };
    const broker = await resolveBroker({ logger, env: {}, probes: p, local: { port: 0 } });
    expect(broker).toMatchObject({ source: 'local', brokers: ['127.0.0.1:9092'] });
    expect(p.startLocal).toHaveBeenCalledWith({ port: 0 }, expect.anything(), {});
    await broker.release();
    expect(stop, 'a broker npm start may share is left running by default').not.toHaveBeenCalled();
  });

  it('stops on release only a local broker it started itself', async () => {
    const stop = vi.fn(async () => undefined);
    const started = await resolveBroker({
      logger,
      env: {},
      local: { stopOnRelease: true },
      probes: { ...probes(false), startLocal: async () => ({ brokers: ['x:1'], started: true, stop }) },
    });
    await started.release();
    expect(stop).toHaveBeenCalledTimes(1);

    const reused = await resolveBroker({
      logger,
      env: {},
      local: { stopOnRelease: true },
      probes: { ...probes(false), startLocal: async () => ({ brokers: ['x:1'], started: false, stop }) },
    });
    await reused.release();
    expect(stop).toHaveBeenCalledTimes(1);
  });

  it('names all three ways out when nothing can work', async () => {
    const p = {
      ...probes(false),
      startLocal: vi.fn(async () => {
        throw new PrerequisiteError('no java was found');
      }),
    };
    const error = await resolveBroker({ logger, env: {}, probes: p }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain('no java was found');
    expect(message).toContain('KAFKA_BROKERS');
    expect(message).toContain('Docker');
    expect(message).toContain('Java 17+ and Maven');
  });

  it('passes on a local broker failure that is not a missing prerequisite as it is', async () => {
    const failure = new Error('node 1 exited while starting');
    const p = { ...probes(false), startLocal: vi.fn(async () => Promise.reject(failure)) };
    await expect(resolveBroker({ logger, env: {}, probes: p })).rejects.toBe(failure);
  });
});

describe('parseBrokerList', () => {
  it('reads host:port lists', () => {
    expect(parseBrokerList(undefined)).toBeUndefined();
    expect(parseBrokerList('  ')).toBeUndefined();
    expect(parseBrokerList('kafka-1:9092,[::1]:9093')).toEqual(['kafka-1:9092', '[::1]:9093']);
  });

  it.each(['localhost', 'host:port', 'host:0', 'host:70000', 'a b:1'])('rejects "%s" naming KAFKA_BROKERS', (value) => {
    expect(() => parseBrokerList(value)).toThrow(ConfigError);
    expect(() => parseBrokerList(value)).toThrow(/KAFKA_BROKERS entry .* is not host:port/);
  });
});
