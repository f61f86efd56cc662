import { describe, expect, it } from 'vitest';
import {
  createChangelogFold,
  createNameMatcher,
  entryKey,
  entryRecord,
  MARKER_KEY,
  objectKey,
  objectRecord,
  tombstone,
  type ChangelogRecord,
} from '../../../src/state/changelog-records.js';
import { persistSettings } from '../../../src/persist/open.js';
import { TOPIC_NAME_RULE } from '../../../src/kafka/topic-name.js';
import { demoConfig } from '../../../src/config/demo.js';

/** The record layout and the fold that restores from it, without a broker. */
function fold(records: ChangelogRecord[], persisted: readonly string[] = ['*']) {
  const f = createChangelogFold(createNameMatcher(persisted));
  records.forEach((r, offset) => f.add(r.key, r.value, `t@${offset}`));
  return f;
}

/** What the log cleaner leaves: the latest record per key, in log order; optionally tombstones gone too. */
function compact(records: ChangelogRecord[], dropTombstones: boolean): ChangelogRecord[] {
  const latest = new Map<string, number>();
  records.forEach((r, i) => latest.set(r.key, i));
  return records.filter((r, i) => latest.get(r.key) === i && !(dropTombstones && r.value === null));
}

describe('changelog record layout', () => {
  it('keys objects and entries as JSON arrays, so no name or key can collide', () => {
    expect(objectKey('conversation')).toBe('["o","conversation"]');
    expect(entryKey('conversation', '17')).toBe('["e","conversation","17"]');
    expect(entryKey('log', 3)).toBe('["e","log",3]');
    // A name containing what a separator would be stays one name.
    expect(entryKey('a","e', 'b')).not.toBe(entryKey('a', 'e","b'));
    expect(objectRecord('c', 'counter', 42)).toEqual({ key: '["o","c"]', value: '{"kind":"counter","value":42}' });
    expect(entryRecord('m', 'map', 'k', { x: 1 })).toEqual({ key: '["e","m","k"]', value: '{"kind":"map","value":{"x":1}}' });
  });

  it('matches exact names, prefix patterns and *, and names a bad pattern', () => {
    const matches = createNameMatcher(['conversation', 'tony.*']);
    expect(['conversation', 'tony.asked', 'tony.', 'conversations', 'tony'].map(matches)).toEqual([true, true, true, false, false]);
    expect(createNameMatcher(['*'])('anything')).toBe(true);
    expect(() => createNameMatcher(['ok', 'a*b'])).toThrow(
      'state.persist[1] must be an object name, or a prefix ending in "*" (like "tony.*"); got "a*b".',
    );
    expect(() => createNameMatcher([''], 'WHARF_STATE_PERSIST')).toThrow(/^WHARF_STATE_PERSIST\[0\] must be/);
  });
});

describe('restoring from records', () => {
  const history: ChangelogRecord[] = [
    { key: MARKER_KEY, value: '{"kind":"marker"}' },
    objectRecord('m', 'map'),
    entryRecord('m', 'map', 'a', 1),
    entryRecord('m', 'map', 'b', 2),
    entryRecord('m', 'map', 'a', 10),
    tombstone(entryKey('m', 'b')),
    objectRecord('l', 'list'),
    entryRecord('l', 'list', 0, 'x'),
    entryRecord('l', 'list', 1, 'y'),
    // cleared, then appended again
    tombstone(entryKey('l', 0)),
    tombstone(entryKey('l', 1)),
    entryRecord('l', 'list', 0, 'z'),
    objectRecord('c', 'counter', 5),
    objectRecord('c', 'counter', 7),
    objectRecord('v', 'value', { deep: [1, 2] }),
    // "gone" is deleted; "shape" was a map, deleted, and came back as a list
    objectRecord('gone', 'map'),
    entryRecord('gone', 'map', 'k', 1),
    tombstone(entryKey('gone', 'k')),
    tombstone(objectKey('gone')),
    objectRecord('shape', 'map'),
    entryRecord('shape', 'map', 'k', 1),
    tombstone(entryKey('shape', 'k')),
    objectRecord('shape', 'list'),
    entryRecord('shape', 'list', 0, 'first'),
    objectRecord('q', 'queue', { capacity: 3, items: ['a'] }),
    objectRecord('e', 'event', true),
    objectRecord('ns', 'namespace'),
    entryRecord('ns', 'namespace', 'field', 'v'),
  ];
  const expected = {
    m: { kind: 'map', value: { a: 10 } },
    l: { kind: 'list', value: ['z'] },
    c: { kind: 'counter', value: 7 },
    v: { kind: 'value', value: { deep: [1, 2] } },
    shape: { kind: 'list', value: ['first'] },
    q: { kind: 'queue', value: { capacity: 3, items: ['a'] } },
    e: { kind: 'event', value: true },
    ns: { kind: 'namespace', value: { field: 'v' } },
  };

  it('folds a log into the latest state of every object', () => {
    expect(fold(history).snapshot()).toEqual(expected);
  });

  it('gives the same state after compaction, with or without the tombstones', () => {
    expect(compact(history, false).length).toBeLessThan(history.length);
    expect(fold(compact(history, false)).snapshot()).toEqual(expected);
    expect(fold(compact(history, true)).snapshot()).toEqual(expected);
  });

  it('restores only names still persisted, and reports the others', () => {
    const f = fold(history, ['m', 'c']);
    expect(f.snapshot()).toEqual({ m: expected.m, c: expected.c });
    expect([...f.skipped].sort()).toEqual(['e', 'gone', 'l', 'ns', 'q', 'shape', 'v']);
  });

  it('ignores entries of an earlier object of the same name with another kind', () => {
    // A map's entry that was never tombstoned (a kill between records would not do this, but a hand-edited log might).
    const records = [
      objectRecord('x', 'map'),
      entryRecord('x', 'map', 'k', 1),
      objectRecord('x', 'list'),
      entryRecord('x', 'list', 0, 'a'),
    ];
    expect(fold(records).snapshot()).toEqual({ x: { kind: 'list', value: ['a'] } });
  });

  it('fails with the record named when the log is not a wharf changelog', () => {
    expect(() => fold([{ key: 'plain', value: '1' }])).toThrow(
      /Changelog record t@0 has a key that is not a wharf state key: "plain"\. Fix or delete that record/,
    );
    expect(() => fold([{ key: objectKey('x'), value: '{"kind":"bogus"}' }])).toThrow(
      /record t@0 has a value that is not \{kind, value\} JSON of a persisted kind/,
    );
    expect(() => fold([objectRecord('l', 'list'), entryRecord('l', 'list', 1, 'b')]).snapshot()).toThrow(
      'Changelog list "l" has item 1 but no item 0.',
    );
  });
});

describe('persistence settings (config < environment)', () => {
  const demo = { source: 'built-in demo (Tony ↔ Jarvis)', state: demoConfig().state };
  const file = { source: '/srv/app/wharf.config.json' };

  it('persists the demo’s conversation and counters by default, and nothing for other configs', () => {
    expect(persistSettings(demo, {})).toEqual({
      persist: ['conversation', 'tony.asked', 'sent', 'replied', 'duplicates'],
      topic: 'wharf.state.default',
      lingerMs: 0,
      partitions: 12,
    });
    expect(persistSettings(file, {}).persist).toEqual([]);
  });

  it('takes the config’s state section, and the environment over it', () => {
    const config = { ...file, state: { persist: ['orders', 'stats.*'], topic: 'wharf.state.orders', lingerMs: 2, partitions: 6 } };
    expect(persistSettings(config, {})).toEqual({
      persist: ['orders', 'stats.*'],
      topic: 'wharf.state.orders',
      lingerMs: 2,
      partitions: 6,
    });
    expect(
      persistSettings(config, {
        WHARF_STATE_PERSIST: ' conversation , tony.* ',
        WHARF_STATE_TOPIC: 'wharf.state.test',
        WHARF_STATE_PARTITIONS: '24',
      }),
    ).toMatchObject({ persist: ['conversation', 'tony.*'], topic: 'wharf.state.test', partitions: 24 });
    expect(persistSettings(demo, { WHARF_STATE_PERSIST: '' }).persist, 'an empty variable turns persistence off').toEqual([]);
  });

  it('names what is wrong', () => {
    expect(() => persistSettings(file, { WHARF_STATE_PERSIST: 'a,b*c' })).toThrow(
      'WHARF_STATE_PERSIST[1] must be an object name, or a prefix ending in "*" (like "tony.*"); got "b*c".',
    );
    expect(() => persistSettings(file, { WHARF_STATE_PARTITIONS: 'twelve' })).toThrow(
      'WHARF_STATE_PARTITIONS must be a whole number from 1 to 1000; got "twelve".',
    );
    expect(() => persistSettings({ ...file, state: { topic: 'no spaces' } }, {})).toThrow(
      `The state changelog topic must be a Kafka topic name (${TOPIC_NAME_RULE}); got "no spaces".`,
    );
  });
});
