import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectAdmin } from '../../src/admin/client.js';
import type { DeploymentStatus } from '../../src/cluster/deployment.js';
import { compiled } from '../../src/paths.js';
import { partitionOf } from '../../src/state/changelog-records.js';
import { deploymentState, SERVICE_MODULES, testBrokers, uniqueName, waitFor } from '../helpers.js';

/**
 * A deployment of several supervisors: separate processes, each with its own WHARF_HOME (its own
 * "host"), one state topic. Persisted objects are one store, split over the topic's partitions:
 * each partition has one owner, the other members route their workers' calls on its objects to
 * it, and a call whose owner died is retried on the next one and applied once.
 */
const dir = mkdtempSync(join(tmpdir(), 'wharf-cluster-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Host {
  index: number;
  home: string;
  /** What the host's workers wrote: "a <id>" before each call, "r <id>" once it resolved. */
  file: string;
  child?: ChildProcess;
  output: string;
}

function hostOf(index: number, prefix = 'host'): Host {
  const root = join(dir, `${prefix}${index}`);
  mkdirSync(root, { recursive: true });
  return { index, home: join(root, '.wharf'), file: join(root, 'calls.log'), output: '' };
}

/** The hitter service on every host: 2 workers, 15 ticks a second each. */
const hitters = (clientId: string) => (host: Host) => ({
  services: [
    {
      module: SERVICE_MODULES.fixture('hitter'),
      workers: { producer: 2 },
      rate: 15,
      options: { host: `h${host.index}`, file: host.file },
    },
  ],
  supervisor: { drainTimeoutMs: 20_000 },
  kafka: { sessionTimeoutMs: 6_000, clientId },
  http: '127.0.0.1:0',
});

function start(host: Host, env: Record<string, string>, configOf: (host: Host) => object): Promise<void> {
  const config = configOf(host);
  const file = join(dirname(host.home), 'wharf.config.json');
  writeFileSync(file, JSON.stringify(config));
  host.output = '';
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], {
    cwd: dirname(host.home),
    env: { ...process.env, ...env, KAFKA_BROKERS: testBrokers().join(','), WHARF_LOG_LEVEL: 'info', WHARF_HOME: host.home },
  });
  host.child = child;
  child.stdout!.on('data', (d) => (host.output += d));
  child.stderr!.on('data', (d) => (host.output += d));
  onTestFinished(() => void child.kill('SIGKILL'));
  return waitFor(() => host.output.includes('supervisor ready') || child.exitCode !== null, {
    timeoutMs: 120_000,
    message: `host ${host.index} to be ready`,
  }).then(() => {
    if (!host.output.includes('supervisor ready')) throw new Error(`host ${host.index} exited; it printed:\n${host.output.slice(-3_000)}`);
  });
}

/** The key of the deployment that runs as several hosts would (TCP admin sockets, one WHARF_AUTHKEY). */
const DEPLOYMENT_KEY = randomBytes(32).toString('hex');

async function adminCall<T>(host: Host, method: string, params?: unknown): Promise<T> {
  const client = await connectAdmin({ dir: host.home, timeoutMs: 5_000, callTimeoutMs: 20_000, env: { WHARF_AUTHKEY: DEPLOYMENT_KEY } });
  try {
    return (await client.call(method, params)) as T;
  } finally {
    await client.close();
  }
}

const hits = async (host: Host) => ((await adminCall<{ value: number }>(host, 'state.get', { name: 'hits' })).value ?? 0) as number;

function calls(host: Host): { attempted: Set<string>; resolved: Set<string> } {
  const attempted = new Set<string>();
  const resolved = new Set<string>();
  if (!existsSync(host.file)) return { attempted, resolved };
  for (const line of readFileSync(host.file, 'utf8').split('\n')) {
    if (line.startsWith('a ')) attempted.add(line.slice(2));
    if (line.startsWith('r ')) resolved.add(line.slice(2));
  }
  return { attempted, resolved };
}

/** The host whose supervisor serves the partition an object lives in. */
function ownerOf(hosts: Host[], statuses: DeploymentStatus[], name: string): Host {
  const partition = partitionOf(name, statuses[0]!.partitions);
  const index = statuses.findIndex((s) => s.served.includes(partition));
  expect(index, `a member serves partition ${partition} (of ${name})`).toBeGreaterThanOrEqual(0);
  return hosts[index]!;
}

/** Every partition served by exactly one of these members. */
function servedOnce(statuses: DeploymentStatus[]): boolean {
  const served = statuses.flatMap((s) => s.served).sort((a, b) => a - b);
  return served.length === statuses[0]!.partitions && served.every((p, i) => p === i);
}

/** The warnings and errors a host printed, and how it ended. */
function problems(host: Host): string {
  const lines = host.output.split('\n');
  const bad = lines.filter((line) => /"level":(40|50|60)/.test(line) || line.startsWith('wharf:')).slice(-20);
  return [...bad, '… its last lines:', ...lines.slice(-8)].join('\n');
}

function exited(host: Host, timeoutMs = 60_000): Promise<number | null> {
  const child = host.child!;
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`host ${host.index} did not exit; it printed:\n${host.output.slice(-3_000)}`)),
      timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/**
 * Stops the hosts one after another (a member's workers finish their calls, on whichever member
 * owns the state then), then reads what the changelog holds and what the hosts' workers noted.
 */
async function stopAndRead(hosts: Host[], topic: string) {
  for (const host of hosts) {
    host.child!.kill('SIGTERM');
    expect(await exited(host), `host ${host.index} stopped cleanly; it printed:\n${problems(host)}`).toBe(0);
  }
  const state = await deploymentState(topic);
  const all = hosts.map(calls);
  const attempted = all.reduce((n, c) => n + c.attempted.size, 0);
  const resolved = all.reduce((n, c) => n + c.resolved.size, 0);
  return { state, all, attempted, resolved };
}

describe('a deployment of three supervisors', () => {
  it(
    'keeps one counter and one map: every resolved call counted once, through the SIGKILL of the owner and its restart',
    { timeout: 480_000 },
    async () => {
      const topic = uniqueName('wharf.state.cluster');
      // As on separate hosts: admin sockets on TCP, one key for the whole deployment.
      const env = {
        WHARF_STATE_PERSIST: 'hits,keys',
        WHARF_STATE_TOPIC: topic,
        WHARF_AUTHKEY: DEPLOYMENT_KEY,
        WHARF_ADMIN_LISTEN: '127.0.0.1:0',
      };
      const config = hitters(uniqueName('cluster'));
      const hosts = [hostOf(0), hostOf(1), hostOf(2)];
      await start(hosts[0]!, env, config);
      await Promise.all([start(hosts[1]!, env, config), start(hosts[2]!, env, config)]);

      // The state's 12 partitions, 4 per member once the group settled.
      const status = () => Promise.all(hosts.map((h) => adminCall<DeploymentStatus>(h, 'cluster.status')));
      await waitFor(async () => servedOnce(await status()), { timeoutMs: 60_000, message: 'every partition served by one member' });
      const statuses = await status();
      expect(statuses[0]!.partitions).toBe(12);
      expect(
        statuses.map((s) => s.served.length),
        'the partitions spread over the three members',
      ).toEqual([4, 4, 4]);
      expect(
        statuses.every((s) => s.members.length === 3),
        'every member sees three members',
      ).toBe(true);
      expect(
        statuses[0]!.members.every((m) => /^127\.0\.0\.1:\d+$/.test(m.address)),
        'members reach each other over TCP',
      ).toBe(true);
      // The member killed is the one serving the counter.
      const owner = ownerOf(hosts, statuses, 'hits');
      const survivor = hosts.find((h) => h !== owner)!;

      const resolvedSoFar = () => hosts.reduce((n, h) => n + calls(h).resolved.size, 0);
      await waitFor(() => resolvedSoFar() >= 150, { timeoutMs: 60_000, message: '150 calls from the three hosts' });
      expect(await hits(survivor)).toBeGreaterThanOrEqual(150);
      owner.child!.kill('SIGKILL');
      const killedAt = Date.now();
      await exited(owner);
      const atKill = resolvedSoFar();
      // The survivors' workers ride out the failover: their calls wait, then reach the new owner.
      const survivors = hosts.filter((h) => h !== owner);
      await waitFor(async () => servedOnce(await Promise.all(survivors.map((h) => adminCall<DeploymentStatus>(h, 'cluster.status')))), {
        timeoutMs: 60_000,
        message: 'the survivors to serve every partition',
      });
      console.log(`failover: the survivors served every partition ${Date.now() - killedAt} ms after the SIGKILL (session timeout 6 s)`);
      await waitFor(() => resolvedSoFar() >= atKill + 150, { timeoutMs: 90_000, message: '150 more calls after the owner was killed' });

      await start(owner, env, config);
      const restarted = resolvedSoFar();
      await waitFor(() => resolvedSoFar() >= restarted + 150, { timeoutMs: 60_000, message: '150 more calls after the restart' });
      expect(await hits(owner), 'the restarted member reads the shared counter').toBeGreaterThanOrEqual(restarted);

      const { state, all, attempted, resolved } = await stopAndRead(hosts, topic);
      const counter = state.hits!.value as number;
      const keys = state.keys!.value as Record<string, number>;
      // Calls the killed owner's own workers had in flight may or may not have landed (2 workers,
      // each awaiting its call); every other call resolved, and none was applied twice.
      const inFlightAtKill = calls(owner).attempted.size - calls(owner).resolved.size;
      expect(inFlightAtKill).toBeLessThanOrEqual(2 * 2);
      for (const host of hosts.filter((h) => h !== owner)) {
        const c = calls(host);
        const unresolved = [...c.attempted].filter((id) => !c.resolved.has(id));
        expect(unresolved, `host ${host.index}: every call resolved; it printed:\n${problems(host)}`).toEqual([]);
      }
      expect(counter).toBeGreaterThanOrEqual(resolved);
      expect(counter, 'no increment applied twice').toBeLessThanOrEqual(attempted);
      expect(counter - resolved).toBeLessThanOrEqual(inFlightAtKill);
      for (const c of all) for (const id of c.resolved) expect(keys[id], `key ${id}`).toBeDefined();
      const allAttempted = new Set(all.flatMap((c) => [...c.attempted]));
      expect(Object.keys(keys).filter((id) => !allAttempted.has(id))).toEqual([]);
      expect(resolved).toBeGreaterThan(450);
    },
  );

  it(
    'keeps one lock for the whole deployment, held through the SIGKILL of the owner; the killed member’s hold ends with it',
    { timeout: 300_000 },
    async () => {
      const topic = uniqueName('wharf.state.lock');
      // The deployment set in the config file this time: its own name, admin sockets on TCP.
      const cluster = { name: uniqueName('locks'), listen: '127.0.0.1:0' };
      const env = { WHARF_STATE_PERSIST: 'critical,critical.by', WHARF_STATE_TOPIC: topic, WHARF_AUTHKEY: DEPLOYMENT_KEY };
      // A lease longer than the test's wait after the kill: only the killed member's leaving can free its hold in time.
      const config = (host: Host) => ({
        services: [
          {
            module: SERVICE_MODULES.fixture('locker'),
            workers: { producer: 2 },
            options: { host: `h${host.index}`, file: host.file, leaseMs: 120_000 },
          },
        ],
        supervisor: { drainTimeoutMs: 20_000 },
        kafka: { sessionTimeoutMs: 6_000, clientId: uniqueName('locks') },
        http: '127.0.0.1:0',
        cluster,
      });
      const hosts = [hostOf(0, 'lock'), hostOf(1, 'lock'), hostOf(2, 'lock')];
      await start(hosts[0]!, env, config);
      await Promise.all([start(hosts[1]!, env, config), start(hosts[2]!, env, config)]);
      const lines = (host: Host) => (existsSync(host.file) ? readFileSync(host.file, 'utf8').split('\n') : []);
      const passes = () => hosts.reduce((n, h) => n + lines(h).filter((l) => l.startsWith('done ')).length, 0);
      await waitFor(() => passes() >= 30, { timeoutMs: 60_000, message: '30 passes through the critical section' });

      const status = () => Promise.all(hosts.map((h) => adminCall<DeploymentStatus>(h, 'cluster.status')));
      await waitFor(async () => servedOnce(await status()), { timeoutMs: 60_000, message: 'every partition served by one member' });
      const statuses = await status();
      expect(statuses.map((s) => s.name)).toEqual(hosts.map(() => cluster.name));
      expect(
        statuses[0]!.members.every((m) => /^127\.0\.0\.1:\d+$/.test(m.address)),
        'members reach each other over TCP',
      ).toBe(true);
      // The member killed is the one serving the lock.
      const owner = ownerOf(hosts, statuses, 'critical');
      owner.child!.kill('SIGKILL');
      await exited(owner);
      const atKill = passes();
      await waitFor(() => passes() >= atKill + 30, { timeoutMs: 60_000, message: '30 more passes after the owner was killed' });
      const survivors = hosts.filter((h) => h !== owner);
      for (const host of survivors) host.child!.kill('SIGTERM');
      for (const host of survivors) expect(await exited(host), `host ${host.index} stopped cleanly:\n${problems(host)}`).toBe(0);

      // Whoever got in found nobody inside, but a worker of the killed member (killed in there).
      const seen = hosts.flatMap((h) =>
        lines(h)
          .filter((l) => l.startsWith('seen '))
          .map((l) => l.slice(5)),
      );
      expect(
        seen.filter((id) => !id.startsWith(`h${owner.index}.`)),
        'two workers inside at once',
      ).toEqual([]);
      for (const host of survivors) expect(lines(host).filter((l) => l.startsWith('done ')).length).toBeGreaterThan(0);
      console.log(
        `lock: ${passes()} passes, ${passes() - atKill} after the owner's SIGKILL; ${seen.length} found the killed member's worker inside`,
      );
    },
  );

  it(
    'runs the demo from two folders as one conversation: one numbering, every exchange recorded once, none lost after a restart',
    { timeout: 300_000 },
    async () => {
      const requests = uniqueName('jarvis.requests');
      const topic = uniqueName('wharf.state.demo');
      // The demo's own services and persisted objects (src/config/demo.ts), on topics of this test's own.
      const env = { WHARF_STATE_PERSIST: 'conversation,tony.asked,sent,replied,duplicates', WHARF_STATE_TOPIC: topic };
      const clientId = uniqueName('demo');
      const jarvis = {
        module: SERVICE_MODULES.jarvis,
        workers: { consumer: 2 },
        consumes: { topics: [requests], groupId: `${clientId}-jarvis` },
      };
      const tony = { module: SERVICE_MODULES.tony, workers: { producer: 1 }, rate: 5, options: { requests } };
      const demo =
        (withTony = true) =>
        () => ({
          services: withTony ? [jarvis, tony] : [jarvis],
          // Tony asks again until Jarvis answers; when the other host leaves, its Jarvis partitions move first.
          supervisor: { drainTimeoutMs: 45_000 },
          kafka: { sessionTimeoutMs: 6_000, clientId },
          http: '127.0.0.1:0',
        });
      const [a, b] = [hostOf(0, 'demo'), hostOf(1, 'demo')];
      await Promise.all([start(a!, env, demo()), start(b!, env, demo())]);
      type Conversation = Record<string, { n: number; answeredBy: string }>;
      const conversation = async (host: Host) =>
        (await adminCall<{ value: Conversation }>(host, 'state.get', { name: 'conversation' })).value;
      await waitFor(async () => Object.keys(await conversation(a!).catch(() => ({}))).length >= 60, {
        timeoutMs: 90_000,
        message: '60 exchanges',
      });
      for (const host of [a!, b!]) {
        host.child!.kill('SIGTERM');
        expect(await exited(host), `host ${host.index} stopped cleanly; it printed:\n${problems(host)}`).toBe(0);
      }
      // Both printed the one conversation as it grew (each watches the deployment's).
      const printed = (host: Host) => new Set([...host.output.matchAll(/^#(\d+) {2}Tony:/gm)].map((m) => Number(m[1])));
      expect(printed(a!).size).toBeGreaterThan(0);
      expect(printed(b!).size).toBeGreaterThan(0);

      // Started again without Tony, so nothing changes the conversation while it is read.
      await start(a!, env, demo(false));
      const restored = await conversation(a!);
      const replied = (await adminCall<{ value: number }>(a!, 'state.get', { name: 'replied' })).value;
      const asked = (await adminCall<{ value: number }>(a!, 'state.get', { name: 'tony.asked' })).value;
      a!.child!.kill('SIGTERM');
      await exited(a!);
      const numbers = Object.values(restored).map((e) => e.n);
      // What both Tonys asked, numbered from one counter: every answered question recorded once.
      expect(new Set(numbers).size).toBe(numbers.length);
      expect(Object.keys(restored).every((key) => restored[key]!.n === Number(key))).toBe(true);
      expect(Math.max(...numbers)).toBeLessThanOrEqual(asked);
      expect(numbers.length, 'replied counts each recorded exchange once').toBe(replied);
      for (const n of [...printed(a!), ...printed(b!)])
        expect(restored[String(n)], `exchange #${n}, printed, is in the conversation`).toBeDefined();
    },
  );

  it(
    'takes the partitions of an owner frozen past its session (SIGSTOP): woken, it gives them up (fenced at its next write, or told by the group) and its calls are retried on the new owner, every call applied once',
    { timeout: 300_000 },
    async () => {
      const topic = uniqueName('wharf.state.zombie');
      const env = { WHARF_STATE_PERSIST: 'hits,keys', WHARF_STATE_TOPIC: topic };
      const config = hitters(uniqueName('zombie'));
      const hosts = [hostOf(0, 'zombie'), hostOf(1, 'zombie')];
      await start(hosts[0]!, env, config);
      await start(hosts[1]!, env, config);
      const status = () => Promise.all(hosts.map((h) => adminCall<DeploymentStatus>(h, 'cluster.status')));
      await waitFor(async () => servedOnce(await status()), { timeoutMs: 60_000, message: 'every partition served by one member' });
      // The member frozen is the one serving the counter.
      const zombie = ownerOf(hosts, await status(), 'hits');
      const other = hosts.find((h) => h !== zombie)!;
      const resolvedSoFar = () => hosts.reduce((n, h) => n + calls(h).resolved.size, 0);
      await waitFor(() => resolvedSoFar() >= 100, { timeoutMs: 60_000, message: '100 calls' });

      // Frozen, as by a long GC pause: its session expires and the other member takes the state over.
      zombie.child!.kill('SIGSTOP');
      await waitFor(async () => servedOnce([await adminCall<DeploymentStatus>(other, 'cluster.status')]), {
        timeoutMs: 60_000,
        message: 'the other member to take every partition over',
      });
      zombie.child!.kill('SIGCONT');
      // Awake, it believes it owns its partitions until its next write is fenced or the group tells it, whichever comes first.
      await waitFor(() => /no longer owns these partitions of the shared state/.test(zombie.output), {
        timeoutMs: 60_000,
        message: 'the woken owner to give the state up',
      });
      console.log(`the woken owner: ${zombie.output.split('\n').find((line) => line.includes('no longer owns these partitions'))}`);
      const atWake = resolvedSoFar();
      await waitFor(() => resolvedSoFar() >= atWake + 100, { timeoutMs: 60_000, message: '100 more calls after it woke' });

      const { state, attempted, resolved } = await stopAndRead(hosts, topic);
      // Nobody was killed: every call resolved, and each was applied exactly once, fence or not.
      expect(resolved, 'every call resolved').toBe(attempted);
      expect(state.hits!.value, 'the counter: exactly one add per call').toBe(resolved);
      expect(Object.keys(state.keys!.value as object).length, 'one key per call').toBe(resolved);
    },
  );
});
