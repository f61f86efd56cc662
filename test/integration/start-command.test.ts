import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { compiled } from '../../src/paths.js';
import { createTopic, kafkaForTest, SERVICE_MODULES, testBrokers, uniqueName, waitFor } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm start` as users run it: the built CLI, a config file, the run's broker. */
function start(config: object): { child: ChildProcess; output: () => string; exited: (timeoutMs?: number) => Promise<number | null> } {
  const file = join(dir, `${uniqueName('config')}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], {
    cwd: dir,
    env: { ...process.env, KAFKA_BROKERS: testBrokers().join(','), WHARF_LOG_LEVEL: 'info', WHARF_HOME: join(dir, '.wharf') },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Waits for the exit with a deadline, failing with what the process printed.
  const exited = (timeoutMs = 30_000) =>
    Promise.race([
      exit,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`npm start did not exit within ${timeoutMs} ms; it printed:\n${output.slice(-3_000)}`)),
          timeoutMs,
        ),
      ),
    ]);
  onTestFinished(() => void child.kill('SIGKILL'));
  return { child, output: () => output, exited };
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

describe('npm start', () => {
  it('drains on SIGTERM under load and exits 0; after a restart nothing committed is handled again', { timeout: 180_000 }, async () => {
    const k = kafkaForTest();
    const topic = await createTopic(await k.admin(), uniqueName('load'), 4);
    const record = join(dir, `${uniqueName('handled')}.log`);
    const recorder = {
      module: SERVICE_MODULES.fixture('recorder'),
      workers: { consumer: 2 },
      consumes: { topics: [topic], groupId: uniqueName('recorders') },
      options: { file: record },
    };
    const config = (producers: number) => ({
      services: [recorder, { module: SERVICE_MODULES.fixture('ticker'), workers: { producer: producers }, rate: 200, options: { topic } }],
      supervisor: { drainTimeoutMs: 20_000 },
      kafka: { sessionTimeoutMs: 6_000 },
    });

    const first = start(config(2));
    await waitFor(() => first.output().includes('supervisor ready'), { timeoutMs: 60_000, message: 'the supervisor to be ready' });
    await waitFor(() => lines(record).length >= 500, {
      timeoutMs: 60_000,
      message: `500 handled messages; npm start printed:\n${first.output().slice(-2_000)}`,
    });
    const signalled = Date.now();
    first.child.kill('SIGTERM');
    expect(await first.exited(), first.output()).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(20_000);
    expect(first.output()).toContain('all workers drained');

    // Everything produced, and consumed by the second run: the rest, and nothing twice.
    const admin = await k.admin();
    const produced = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
    const second = start(config(0));
    // Signals before the supervisor installed its handlers would just kill it: wait until it runs.
    await waitFor(() => second.output().includes('supervisor ready'), { timeoutMs: 60_000, message: 'the second supervisor to be ready' });
    await waitFor(() => lines(record).length >= produced, { timeoutMs: 60_000, message: `${produced} handled messages` });
    second.child.kill('SIGTERM');
    expect(await second.exited(), second.output()).toBe(0);

    const all = lines(record);
    expect(all.length, 'every produced message handled').toBe(produced);
    // The first run may or may not leave work for the second: either way nothing comes twice.
    expect(new Set(all).size, 'no message handled twice across the restart').toBe(all.length);
  });

  it('exits 1 naming the workers a drain timed out on, and at once on a second signal', { timeout: 120_000 }, async () => {
    const k = kafkaForTest();
    const producer = await k.producer();
    const run = async (drainTimeoutMs: number) => {
      const topic = await createTopic(await k.admin(), uniqueName('slow'), 1);
      const startedFile = join(dir, `${uniqueName('started')}.log`);
      const supervisor = start({
        services: [
          {
            module: SERVICE_MODULES.fixture('slow'),
            consumes: { topics: [topic], groupId: uniqueName('slow') },
            options: { holdMs: 60_000, startedFile },
          },
        ],
        supervisor: { drainTimeoutMs },
        kafka: { sessionTimeoutMs: 6_000 },
      });
      await waitFor(() => supervisor.output().includes('supervisor ready'), { timeoutMs: 60_000, message: 'the supervisor to be ready' });
      await producer.send({ topic, messages: [{ value: '{"hold":true}' }] });
      await waitFor(() => existsSync(startedFile), { message: 'the slow handler to start' });
      return supervisor;
    };

    const timedOut = await run(1_000);
    timedOut.child.kill('SIGTERM');
    expect(await timedOut.exited(), timedOut.output()).toBe(1);
    expect(timedOut.output()).toContain('drain timed out; did not finish: slow/consumer/0');

    const forced = await run(30_000);
    forced.child.kill('SIGTERM');
    await waitFor(() => forced.output().includes('draining'), { message: 'the drain to begin' });
    const second = Date.now();
    forced.child.kill('SIGTERM');
    expect(await forced.exited(), forced.output()).toBe(130);
    expect(Date.now() - second).toBeLessThan(5_000);
    expect(forced.output()).toContain('second signal: exiting now without draining');
  });

  it('rejects bad config before any worker starts, with one line naming the field', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ services: [{ module: SERVICE_MODULES.jarvis, workers: { consumer: 0 } }] }));
    const result = spawnSync(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], {
      encoding: 'utf8',
      env: { ...process.env, KAFKA_BROKERS: '' },
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toBe(`wharf: Invalid config (${file}): services[0].workers.consumer must be at least 1, got 0.`);
  });

  it.each([
    [['--workers', '0'], '--workers must be a whole number from 1 to 64; got "0".'],
    [['--workers', '-1'], '--workers must be a whole number from 1 to 64; got "-1".'],
    [['--rate', '-5'], '--rate must be a number of messages per second above 0 (at most 1000000); got "-5".'],
    [['--wrokers', '2'], "Unknown option '--wrokers' for `npm start`. Run `npm start --help`."],
  ])('rejects %j with one line and exit 2', (args, message) => {
    const result = spawnSync(process.execPath, [compiled('src/cli.js'), 'start', ...args], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(`wharf: ${message}`);
  });
});
