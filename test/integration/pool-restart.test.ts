import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { producerConfig } from '../../src/kafka/client.js';
import { compiled } from '../../src/paths.js';
import type { SupervisorStatus } from '../../src/status.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, testBrokers, uniqueName, waitFor } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const home = join(dir, '.wharf');
const env = { ...process.env, KAFKA_BROKERS: testBrokers().join(','), WHARF_LOG_LEVEL: 'info', WHARF_HOME: home };

/** `npm start` as users run it: the built CLI, a config file, the run's broker. */
function start(config: object): { child: ChildProcess; output: () => string; exited: () => Promise<number | null> } {
  const file = join(dir, `${uniqueName('config')}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], { cwd: dir, env });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const exited = () =>
    Promise.race([
      exit,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`npm start did not exit; it printed:\n${output.slice(-3_000)}`)), 30_000),
      ),
    ]);
  onTestFinished(() => void child.kill('SIGKILL'));
  return { child, output: () => output, exited };
}

function admin(...args: string[]) {
  return spawnSync(process.execPath, [compiled('src/cli.js'), 'admin', ...args], { cwd: dir, env, encoding: 'utf8' });
}

/** "topic/partition/offset key seq" lines, as the pool-order fixture records them. */
function handled(file: string) {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return lines.map((line) => {
    const [where, key, seq] = line.split(' ');
    const [, partition, offset] = where!.split('/');
    return { partition: Number(partition), offset: Number(offset), key: key!, seq: Number(seq) };
  });
}

const MESSAGES = 20_000;

describe('thread pool across a kill -9', () => {
  it('hands what was not committed to the next run, and loses nothing that was', { timeout: 240_000 }, async () => {
    const k = kafkaForTest();
    const kafkaAdmin = await k.admin();
    const topic = await createTopic(kafkaAdmin, uniqueName('pool-kill'), 2);
    const producer = await k.producer(producerConfig());
    for (let startAt = 0; startAt < MESSAGES; startAt += 1_000) {
      const messages = Array.from({ length: 1_000 }, (_, i) => startAt + i).map((n) => ({
        key: `k${n % 200}`,
        value: JSON.stringify({ n, seq: Math.floor(n / 200) }),
      }));
      await producer.send({ topic, acks: -1, messages });
    }
    const groupId = uniqueName('pool-kill');
    const config = (file: string) => ({
      services: [
        {
          module: SERVICE_MODULES.fixture('pool-order'),
          consumes: { topics: [topic], groupId, concurrency: { mode: 'key', threads: 4 } },
          options: { file },
        },
      ],
      kafka: { sessionTimeoutMs: 6_000 },
    });
    const committed = async () => {
      const [offsets] = await kafkaAdmin.fetchOffsets({ groupId, topics: [topic] });
      return new Map(offsets!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    };

    const firstFile = join(dir, 'first.log');
    const first = start(config(firstFile));
    await waitFor(() => first.output().includes('supervisor ready'), {
      timeoutMs: 60_000,
      message: `the supervisor to be ready:\n${first.output().slice(-2_000)}`,
    });

    // The pool's health, as an operator sees it.
    const status = await waitFor(
      () => {
        const result = admin('workers', '--json');
        const parsed = result.status === 0 ? (JSON.parse(result.stdout) as SupervisorStatus) : undefined;
        return parsed?.workers[0]?.pool?.completed ? parsed : undefined;
      },
      { timeoutMs: 30_000, message: 'pool health in `admin workers --json`' },
    );
    expect(status.workers[0]!.pool).toMatchObject({ mode: 'key', threads: 4, maxThreads: 4 });
    const table = admin('workers');
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/POOL OF\s+MODE\s+THREADS\s+IN FLIGHT/);
    expect(table.stdout).toMatch(/pool-order\/consumer\/0\s+key\s+4\/4\s+\d+\/1000/);

    // Some offsets committed, more handled since: then kill -9, in the middle of the backlog.
    await waitFor(async () => [...(await committed()).values()].every((o) => o > 500) && handled(firstFile).length >= 5_000, {
      timeoutMs: 120_000,
      message: 'commits and 5,000 handled',
    });
    first.child.kill('SIGKILL');
    await first.exited();
    const atKill = await committed();
    const firstRun = handled(firstFile);
    expect(firstRun.length).toBeLessThan(MESSAGES);

    // Nothing committed was unfinished: every offset below the commit was handled.
    const handledFirst = new Set(firstRun.map((h) => `${h.partition}/${h.offset}`));
    for (const [partition, offset] of atKill)
      for (let o = 0; o < offset; o++)
        expect(handledFirst.has(`${partition}/${o}`), `${partition}/${o} committed but never handled`).toBe(true);

    const high = new Map((await kafkaAdmin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    const remaining = [...high].reduce((sum, [partition, end]) => sum + end - atKill.get(partition)!, 0);
    const secondFile = join(dir, 'second.log');
    const second = start(config(secondFile));
    await waitFor(() => second.output().includes('supervisor ready'), { timeoutMs: 60_000, message: 'the second supervisor to be ready' });
    await waitFor(() => handled(secondFile).length >= remaining, {
      timeoutMs: 120_000,
      message: `${remaining} messages handled by the second run`,
    });
    second.child.kill('SIGTERM');
    expect(await second.exited(), second.output().slice(-2_000)).toBe(0);
    // The drain committed everything it had finished: here, everything.
    expect(Object.fromEntries(await committed())).toEqual(Object.fromEntries(high));

    // The second run handled exactly what was not committed: no more, no less, once each.
    const secondRun = handled(secondFile);
    const expected = [...high].flatMap(([partition, end]) =>
      Array.from({ length: end - atKill.get(partition)! }, (_, i) => `${partition}/${atKill.get(partition)! + i}`),
    );
    expect(secondRun.map((h) => `${h.partition}/${h.offset}`).sort()).toEqual(expected.sort());
    // Handled in the first run but not committed there: handled again (at-least-once, counted).
    const again = secondRun.filter((h) => handledFirst.has(`${h.partition}/${h.offset}`)).length;
    expect(again, 'the kill left handled-but-uncommitted messages to redo').toBeGreaterThan(0);
    // Each run kept every key's order.
    for (const run of [firstRun, secondRun]) {
      const last = new Map<string, number>();
      for (const h of run) {
        expect(h.seq, `order of ${h.key}`).toBeGreaterThan(last.get(h.key) ?? -1);
        last.set(h.key, h.seq);
      }
    }
    process.stderr.write(
      `pool kill -9: committed at kill ${[...atKill.values()].join('+')}, handled by run 1 ${firstRun.length}, handled again by run 2 ${again}\n`,
    );
  });
});
