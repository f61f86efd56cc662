import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { startAdminServer } from '../../src/admin/server.js';
import { clusterStateApi, openSharedState, type SharedStateHandle } from '../../src/cluster/open.js';
import { stateTransactionalId } from '../../src/cluster/partitions.js';
import { createKafka } from '../../src/kafka/client.js';
import { createChangelog, openChangelogTopic, readChangelog } from '../../src/persist/changelog.js';
import type { StateChange } from '../../src/state/types.js';
import { standInSupervisor } from '../../scripts/load/stand-in-supervisor.js';
import { runAdmin } from '../admin-cli.js';
import { testBrokers, testLogger, uniqueName, waitFor } from '../helpers.js';

/**
 * A deployment's state split over partitions, in one process: two members (each with its own admin
 * socket), four partitions. Calls, whole-object admin reads and watches reach every partition from
 * either member; and the transactional id of a partition fences its earlier owner's writes.
 */
const dir = mkdtempSync(join(tmpdir(), 'wharf-partitions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function member(name: string, topic: string, index: number): Promise<SharedStateHandle> {
  const shared = openSharedState({
    settings: { persist: ['*'], topic, lingerMs: 0, partitions: 4 },
    clusterName: name,
    brokers: testBrokers(),
    logger: testLogger(),
    sessionTimeoutMs: 6_000,
    env: {},
  });
  const deployment = shared.deployment!;
  const server = await startAdminServer({
    api: { state: clusterStateApi(shared), ...standInSupervisor(), extra: deployment.adminMethods() },
    dir: join(dir, `${name}-${index}`),
    logger: testLogger(),
    env: {},
  });
  onTestFinished(async () => {
    await shared.close().catch(() => undefined);
    await server.close();
  });
  await shared.join({ address: server.address, keyFile: server.keyFile });
  return shared;
}

describe('a deployment’s state over partitions', () => {
  it(
    'serves every partition from either member: calls, admin reads and writes, and 41 watches of everything',
    { timeout: 180_000 },
    async () => {
      const name = uniqueName('partitions');
      const a = await member(name, name, 0);
      const b = await member(name, name, 1);
      const [da, db] = [a.deployment!, b.deployment!];
      await waitFor(() => da.served().length + db.served().length === 4 && da.served().length === 2, {
        timeoutMs: 60_000,
        message: 'the four partitions split two and two',
      });
      // Names in every partition, so half of them are owned by the other member whichever calls.
      const names: string[] = [];
      for (let i = 0; names.length < 12; i++) {
        const candidate = `n${i}`;
        if (names.filter((n) => da.partitionOf(n) === da.partitionOf(candidate)).length < 3) names.push(candidate);
      }
      expect(new Set(names.map((n) => da.partitionOf(n))).size).toBe(4);

      // What `npm run admin -- cluster` prints: each member with the partitions it serves.
      const table = await runAdmin(['cluster'], { WHARF_HOME: join(dir, `${name}-0`) });
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toContain(`deployment ${name}: 2 members, state in ${name} (4 partitions), this one serves partitions `);
      expect(table.stdout).toMatch(/^ROLE +MEMBER +PID +PARTITIONS +ADDRESS$/m);
      const ranges = (partitions: number[]) =>
        partitions[1] === partitions[0]! + 1 ? `${partitions[0]}-${partitions[1]}` : partitions.join(',');
      for (const d of [da, db])
        expect(table.stdout).toMatch(
          new RegExp(`^owner +${d.tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.* ${ranges(d.served().sort())} +/`, 'm'),
        );

      const seen: StateChange[] = [];
      const unwatch = a.store.watch(undefined, (change) => seen.push(change));
      onTestFinished(unwatch);
      // 40 more watches of everything, each needing b's two partitions: more than the 32 watches
      // b's admin socket allows the one connection a has to it, unless they share subscriptions.
      const more = Array.from({ length: 40 }, () => {
        const names = new Set<string>();
        onTestFinished(a.store.watch(undefined, (change) => names.add(change.name)));
        return names;
      });
      // Watches attach over the other member's admin socket: a probe in every partition, added
      // until the watches see each one, says they are attached; the probes are then deleted.
      const probes = new Map<number, string>();
      for (let i = 0; probes.size < 4; i++)
        if (!probes.has(da.partitionOf(`probe${i}`))) probes.set(da.partitionOf(`probe${i}`), `probe${i}`);
      const seenAll = (op?: string) => [...probes.values()].every((p) => seen.some((c) => c.name === p && (!op || c.op === op)));
      await waitFor(
        async () => {
          for (const probe of probes.values()) await a.store.execute('w', 'counter', probe, 'add', [1]);
          return seenAll() && more.every((names) => [...probes.values()].every((p) => names.has(p)));
        },
        { timeoutMs: 20_000, intervalMs: 200, message: 'every watch of everything to see a probe in every partition' },
      );
      for (const probe of probes.values()) await clusterStateApi(a).delete(probe);
      await waitFor(() => seenAll('drop'), { timeoutMs: 20_000, message: 'the watch to see the probes deleted' });
      seen.length = 0;

      for (const n of names) expect(await a.store.execute('w', 'counter', n, 'add', [1])).toBe(1);
      for (const n of names) expect(await b.store.execute('w', 'counter', n, 'add', [2])).toBe(3);

      await waitFor(() => seen.filter((c) => c.op === 'add' || c.op === 'set').length >= names.length * 2, {
        timeoutMs: 20_000,
        message: `the watch of everything to see the ${names.length * 2} adds (saw ${seen.length})`,
      });
      expect(new Set(seen.map((c) => c.name))).toEqual(new Set(names));

      // The admin socket's view, from either member: every partition's objects.
      for (const handle of [a, b]) {
        const api = clusterStateApi(handle);
        const snapshot = (await api.snapshot()) as unknown as Record<string, { value: unknown }>;
        for (const n of names) expect(snapshot[n]?.value, `${n} in the snapshot`).toBe(3);
        const described = (await api.describe()) as unknown as { name: string }[];
        expect(described.map((o) => o.name).sort()).toEqual([...names].sort());
      }
      // A call too large for a changelog record is refused at once, wherever its partition is served.
      for (const handle of [a, b]) {
        const started = Date.now();
        await expect(handle.store.execute('w', 'map', 'big', 'set', ['k', 'x'.repeat(1_100_000)])).rejects.toMatchObject({
          code: 'ERR_STATE_TOO_LARGE',
        });
        expect(Date.now() - started, 'refused at once, not retried').toBeLessThan(1_000);
      }
      const remote = names.find((n) => !da.served().includes(da.partitionOf(n)))!;
      const api = clusterStateApi(a);
      expect(((await api.get(remote)) as unknown as { value: number }).value).toBe(3);
      await api.set(remote, 40, 'counter');
      expect(await b.store.execute('w', 'counter', remote, 'get', [])).toBe(40);
      expect(await api.delete(remote)).toBe(true);
      expect(await api.get(remote)).toBeUndefined();

      // b leaves: a serves every partition, and the watches move from b's subscriptions to a's own store.
      await b.close();
      await waitFor(() => da.served().length === 4, { timeoutMs: 60_000, message: 'a to serve all four partitions' });
      for (const names of more) names.clear();
      seen.length = 0;
      await waitFor(
        async () => {
          for (const probe of probes.values()) await a.store.execute('w', 'counter', probe, 'add', [1]);
          return seenAll() && more.every((names) => [...probes.values()].every((p) => names.has(p)));
        },
        { timeoutMs: 20_000, intervalMs: 200, message: 'every watch of everything to see a probe in every partition, all served by a' },
      );
    },
  );

  it('refuses the writes of a partition’s earlier owner once a new one took its transactional id', { timeout: 120_000 }, async () => {
    const name = uniqueName('fence');
    const kafka = createKafka({ brokers: testBrokers(), logger: testLogger() });
    const partitions = await openChangelogTopic(kafka, name, testLogger(), 3);
    const open = async () => {
      const changelog = createChangelog({
        kafka,
        topic: name,
        logger: testLogger(),
        transactionalId: stateTransactionalId(name, 1),
        partition: 1,
        partitions,
        topicReady: true,
      });
      await changelog.open();
      onTestFinished(() => changelog.close().catch(() => undefined));
      return changelog;
    };
    const before = await open();
    await before.write([{ key: '["o","x"]', value: '{"kind":"value","value":"before"}' }]);
    const after = await open();
    // The earlier owner, not knowing it lost the partition, writes: refused.
    await expect(before.write([{ key: '["o","x"]', value: '{"kind":"value","value":"zombie"}' }])).rejects.toThrow(/epoch|fence/i);
    await after.write([{ key: '["o","x"]', value: '{"kind":"value","value":"after"}' }]);

    const values: string[] = [];
    const end = await after.mark();
    await readChangelog({
      kafka,
      topic: name,
      ends: new Map([[1, end]]),
      apply: (_p, key, value) => key !== '["m"]' && values.push(value!),
    });
    expect(values.map((v) => (JSON.parse(v) as { value: string }).value)).toEqual(['before', 'after']);
  });
});
