import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../src/kafka/client.js';
import { isPortFree } from '../../src/kafka/local/ports.js';
import { compiled, stateHome } from '../../src/paths.js';
import { createTopic, testLogger, uniqueName, waitFor } from '../helpers.js';

/** `npm run kafka` as a user runs it (the built CLI), against folders of this test's own. */
function kafkaCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [compiled('src/cli.js'), 'kafka', ...args], {
      env: { ...process.env, KAFKA_BROKERS: '', WHARF_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr: stderr.trim() }));
  });
}

/**
 * A base port P with P…P+2 and P+100…P+102 free, below Linux's ephemeral range (32768 and up),
 * where the outgoing connections of tests running beside this one could take a port meanwhile.
 */
async function freeBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const ports = [0, 1, 2, 100, 101, 102].map((d) => base + d);
    if ((await Promise.all(ports.map((p) => isPortFree(p)))).every(Boolean)) return base;
  }
}

/** Pids of live JVMs whose command line mentions `dir`. */
function jvmsUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const root = join(stateHome(), 'test-brokers', `cli-${process.pid}`);
mkdirSync(root, { recursive: true });
afterAll(async () => {
  for (const dir of readdirSync(root)) await kafkaCli(['stop', '--dir', join(root, dir)]);
  rmSync(root, { recursive: true, force: true });
});

describe('npm run kafka (local broker)', () => {
  it('runs a three-node cluster: start, start again, metadata, defaults, stop', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(root, 'three-'));
    const base = await freeBase();
    const first = await kafkaCli(['start', '--brokers', '3', '--port', String(base), '--dir', dir, '--json']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const started = JSON.parse(first.stdout);
    expect(started).toMatchObject({ alreadyRunning: false, bootstrap: `127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}` });
    expect(jvmsUsing(dir)).toHaveLength(3);

    const second = JSON.parse((await kafkaCli(['start', '--brokers', '3', '--port', String(base), '--dir', dir, '--json'])).stdout);
    expect(second.alreadyRunning).toBe(true);
    expect(second.nodes.map((n: { pid: number }) => n.pid)).toEqual(started.nodes.map((n: { pid: number }) => n.pid));
    expect(jvmsUsing(dir), 'a second start starts nothing').toHaveLength(3);

    const admin = createKafka({ brokers: started.bootstrap.split(','), logger: testLogger() }).admin();
    try {
      await admin.connect();
      const { brokers } = await admin.describeCluster();
      expect(brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
      const topic = await createTopic(admin, uniqueName('replicated'), 2);
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      for (const partition of metadata.topics[0]!.partitions) expect(partition.replicas).toHaveLength(3);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['min.insync.replicas'] }],
      });
      expect(configs.resources[0]!.configEntries[0]!.configValue).toBe('2');
    } finally {
      await admin.disconnect();
    }

    const status = await kafkaCli(['status', '--dir', dir, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).nodes.every((n: { running: boolean }) => n.running)).toBe(true);

    const stop = await kafkaCli(['stop', '--dir', dir]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain('Stopped 3 local Kafka nodes');
    expect(jvmsUsing(dir), 'stop leaves no JVM behind').toEqual([]);
    expect((await kafkaCli(['status', '--dir', dir])).code).toBe(3);
  });

  it('refuses a taken port with one line that says what to do', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const { code, stderr } = await kafkaCli(['start', '--port', String(port), '--dir', mkdtempSync(join(root, 'taken-'))]);
      expect(code).toBe(1);
      expect(stderr).toBe(
        `wharf: Port ${port} on 127.0.0.1 is taken by another process. Pick other ports with --port P (a cluster uses ports from P for clients and from P+100 for its controllers).`,
      );
    } finally {
      blocker.close();
    }
  });

  it('names a port taken while the node was starting, rather than a stack trace', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(root, 'race-'));
    const base = await freeBase();
    const blocker = createServer();
    // server.properties is written just before the JVM is spawned; the JVM binds seconds later.
    const properties = join(dir, 'node-1', 'server.properties');
    const start = kafkaCli(['start', '--port', String(base), '--dir', dir]);
    await waitFor(() => existsSync(properties), { timeoutMs: 60_000, intervalMs: 20, message: 'the node to be prepared' });
    await new Promise<void>((resolve) => blocker.listen(base, '127.0.0.1', () => resolve()));
    try {
      const { code, stderr } = await start;
      expect(code).toBe(1);
      expect(stderr).toBe(
        `wharf: Port ${base} on 127.0.0.1 was taken by another process while local Kafka node 1 started. ` +
          `Pick other ports with --port P (a cluster uses ports from P for clients and from P+100 for its controllers).`,
      );
      expect(jvmsUsing(dir)).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('reports a broker that dies while starting, with the tail of its log', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(root, 'dies-'));
    // Storage that claims to be formatted but is not: the broker exits at once.
    mkdirSync(join(dir, 'node-1', 'data'), { recursive: true });
    writeFileSync(join(dir, 'node-1', 'data', 'meta.properties'), 'not a kafka meta file\n');
    const { code, stderr } = await kafkaCli(['start', '--port', String(await freeBase()), '--dir', dir]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^wharf: Local Kafka node 1 exited while starting; its log \(.*server\.log\) ends with:/);
    expect(stderr).toMatch(/Exiting Kafka due to fatal exception/);
    expect(jvmsUsing(dir)).toEqual([]);
  });
});
