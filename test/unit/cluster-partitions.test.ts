import { describe, expect, it } from 'vitest';
import { assignPartitions, decodeMemberInfo, encodeMemberInfo } from '../../src/cluster/assigner.js';
import { partitionOf } from '../../src/state/changelog-records.js';

/**
 * How a deployment shares its state (docs/cluster.md): which partition an object lives in, and
 * which member the group gives each partition to. Both are pure, so they are tested without Kafka.
 */
const P = Array.from({ length: 12 }, (_, p) => p);
const member = (memberId: string, owned: number[] = []) => ({ memberId, owned });

describe('the partition an object lives in', () => {
  it('is the same on every member and in every version: existing changelogs depend on it', () => {
    // Golden values: a change to the hash would put restored objects in partitions nobody reads them from.
    expect(
      ['conversation', 'tony.asked', 'sent', 'replied', 'duplicates', 'hits', 'keys', 'critical'].map((n) => partitionOf(n, 12)),
    ).toEqual([10, 11, 11, 2, 3, 3, 5, 4]);
    expect(partitionOf('conversation', 1)).toBe(0);
    expect(partitionOf('', 12)).toBe(partitionOf('', 12));
  });

  it('spreads names evenly', () => {
    const counts = new Array<number>(12).fill(0);
    for (let i = 0; i < 12_000; i++) counts[partitionOf(`orders.${i}`, 12)]!++;
    for (const count of counts) expect(count).toBeGreaterThan(800);
    for (const count of counts) expect(count).toBeLessThan(1_200);
  });
});

describe('the assignor', () => {
  const sizes = (result: Map<string, number[]>) => [...result.values()].map((ps) => ps.length);

  it('gives every partition to exactly one member, evenly', () => {
    for (const n of [1, 2, 3, 4, 5, 12, 13]) {
      const result = assignPartitions(
        P,
        Array.from({ length: n }, (_, i) => member(`m${i}`)),
      );
      const given = [...result.values()].flat().sort((a, b) => a - b);
      expect(given, `${n} members`).toEqual(P);
      expect(Math.max(...sizes(result)) - Math.min(...sizes(result)), `${n} members: balanced`).toBeLessThanOrEqual(1);
    }
  });

  it('leaves partitions with the member serving them, and moves only what must move', () => {
    const alone = assignPartitions(P, [member('a', P)]);
    expect(alone.get('a')).toEqual(P);
    // A second member joins: the first keeps half of what it had, the second gets the rest.
    const two = assignPartitions(P, [member('a', P), member('b')]);
    expect(two.get('a')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(two.get('b')).toEqual([6, 7, 8, 9, 10, 11]);
    // A third joins: each of the first two gives up two, nothing else moves.
    const three = assignPartitions(P, [member('a', two.get('a')), member('b', two.get('b')), member('c')]);
    expect(three.get('a')).toEqual([0, 1, 2, 3]);
    expect(three.get('b')).toEqual([6, 7, 8, 9]);
    expect(three.get('c')).toEqual([4, 5, 10, 11]);
    // One leaves: the survivors keep theirs and share its partitions.
    const after = assignPartitions(P, [member('a', three.get('a')), member('c', three.get('c'))]);
    expect(after.get('a')!.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(after.get('c')!.slice(0, 4)).toEqual([4, 5, 10, 11]);
    expect([...after.values()].flat().sort((x, y) => x - y)).toEqual(P);
  });

  it('gives a partition two members claim (after a split) to one of them', () => {
    const result = assignPartitions(P, [member('b', [0, 1]), member('a', [0, 1])]);
    expect(result.get('a')).toContain(0);
    expect(result.get('b')).not.toContain(0);
    expect([...result.values()].flat().sort((x, y) => x - y)).toEqual(P);
  });

  it('carries a member’s address and partitions in its join metadata, and ignores metadata that is not a wharf member’s', () => {
    const info = { address: '10.0.0.7:7070', tag: 'host-a:12:abcdef', pid: 12, owned: [3, 4] };
    expect(decodeMemberInfo(encodeMemberInfo(['wharf.state.default'], info))).toEqual({ ...info, keyFile: undefined });
    expect(decodeMemberInfo(Buffer.from('not metadata'))).toBeUndefined();
  });
});
