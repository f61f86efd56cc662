import { describe, expect, it } from 'vitest';
import { nodeProperties, portsFrom } from '../../src/kafka/local/properties.js';
import { parseJavaMajor } from '../../src/kafka/local/prerequisites.js';
import { randomClusterId } from '../../src/kafka/local/cluster.js';

function parse(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
}

describe('local broker properties', () => {
  const one = [{ nodeId: 1, port: 9092, controllerPort: 9192, dir: '/x/node-1' }];
  const three = portsFrom(19092, 3).map((p, i) => ({ nodeId: i + 1, ...p, dir: `/x/node-${i + 1}` }));

  it('binds a single node to loopback and replicates nothing', () => {
    const props = parse(nodeProperties(one[0]!, one));
    expect(props.listeners).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192');
    expect(props['process.roles']).toBe('broker,controller');
    expect(props['offsets.topic.replication.factor']).toBe('1');
    expect(props['transaction.state.log.replication.factor']).toBe('1');
    expect(props['group.initial.rebalance.delay.ms']).toBe('0');
  });

  it('gives a three-node cluster replication factor 3 and min.insync.replicas 2', () => {
    const props = parse(nodeProperties(three[1]!, three));
    expect(props['node.id']).toBe('2');
    expect(props['controller.quorum.voters']).toBe('1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194');
    expect(props['default.replication.factor']).toBe('3');
    expect(props['min.insync.replicas']).toBe('2');
    expect(props['offsets.topic.replication.factor']).toBe('3');
    expect(props['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:19093');
  });
});

describe('java version', () => {
  it.each([
    ['openjdk version "17.0.15" 2025-04-15', 17],
    ['openjdk version "21" 2023-09-19', 21],
    ['java version "1.8.0_392"', 8],
    ['no version here', undefined],
  ])('%s → %s', (text, major) => {
    expect(parseJavaMajor(text)).toBe(major);
  });
});

describe('cluster id', () => {
  it('is 22 base64url characters and never starts with "-" (the storage tool would take it for a flag)', () => {
    for (let i = 0; i < 2_000; i++) {
      const id = randomClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
