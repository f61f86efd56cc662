import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { compiled } from '../../src/paths.js';
import type { SupervisorStatus } from '../../src/status.js';
import { runAdminIn, SERVICE_MODULES, testBrokers, uniqueName, waitFor } from '../helpers.js';

/**
 * `npm run admin -- scale` against a real supervisor: `npm start` as users run it (the built CLI,
 * a config file, the run's broker), steered through its admin socket by the admin command.
 */
async function startWharf(config: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-scale-'));
  const file = join(dir, 'wharf.config.json');
  writeFileSync(file, JSON.stringify({ ...config, kafka: { sessionTimeoutMs: 6_000 } }));
  const home = join(dir, '.wharf');
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'start', '--config', file], {
    cwd: dir,
    env: { ...process.env, KAFKA_BROKERS: testBrokers().join(','), WHARF_LOG_LEVEL: 'info', WHARF_HOME: home },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  onTestFinished(async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => output.includes('supervisor ready'), {
    timeoutMs: 60_000,
    message: `the supervisor to be ready; it printed:\n${output.slice(-2_000)}`,
  });
  const admin = (...args: string[]) => runAdminIn(home, args);
  const status = async (): Promise<SupervisorStatus> => JSON.parse((await admin('workers', '--json')).stdout);
  const service = async (name: string) => (await status()).services.find((s) => s.name === name)!;
  const consumers = async (name: string) =>
    (await status()).workers.filter((w) => w.service === name && w.role === 'consumer' && w.state !== 'stopped').map((w) => w.state);
  return { admin, service, consumers, output: () => output };
}

const consumer = (module: string, options: Record<string, unknown> = {}) => ({
  module,
  workers: { consumer: 1 },
  consumes: { topics: [uniqueName('scale-in')], groupId: uniqueName('scale') },
  options,
});

describe('npm run admin -- scale', () => {
  it(
    'scales a service up and down, and a crash-looping scale answers with an error within the ready timeout',
    { timeout: 150_000 },
    async () => {
      const readyTimeoutMs = 20_000;
      const wharf = await startWharf({
        services: [
          consumer(SERVICE_MODULES.fixture('echo')),
          consumer(SERVICE_MODULES.fixture('outgrown'), { failFrom: 1, failWith: 'crash' }),
        ],
        supervisor: { readyTimeoutMs, restart: { initialDelayMs: 50, maxDelayMs: 200, maxRestarts: 2, windowMs: 60_000 } },
      });

      expect(await wharf.admin('scale', 'echo', '3')).toEqual({ code: 0, stdout: 'echo: 3 consumer workers (healthy)\n', stderr: '' });
      expect(await wharf.consumers('echo')).toEqual(['ready', 'ready', 'ready']);
      expect(await wharf.admin('scale', 'echo', '1')).toEqual({ code: 0, stdout: 'echo: 1 consumer worker (healthy)\n', stderr: '' });
      expect(await wharf.consumers('echo')).toEqual(['ready']);
      expect(await wharf.admin('scale', 'echo', '65')).toMatchObject({
        code: 2,
        stderr: 'wharf: The worker count for `admin scale` must be a whole number from 1 to 64; got "65".',
      });

      // Its second worker always crashes: a crash loop, the service given up on, and an answer.
      const began = Date.now();
      const scaled = await wharf.admin('scale', 'outgrown', '2');
      expect(Date.now() - began, 'answered within the ready timeout').toBeLessThan(readyTimeoutMs);
      expect(scaled).toMatchObject({ code: 1, stdout: '' });
      expect(scaled.stderr).toMatch(
        /^wharf: Scaling outgrown to 2 consumer workers failed: outgrown crash-looped and was given up on \(outgrown\/consumer\/1 crashed 3 times within 60000 ms \(limit 2 restarts\); last: Error: outgrown\/consumer\/1 cannot start: .*\)\. Fix the service, then restart the supervisor to run it again\.$/,
      );
      expect(await wharf.service('outgrown')).toMatchObject({ health: 'failed' });
      expect(await wharf.service('echo')).toMatchObject({ health: 'healthy', workers: { consumer: 1 } });
    },
  );

  it('answers a scale whose new worker never gets ready with a timeout, and takes the worker back', { timeout: 150_000 }, async () => {
    const readyTimeoutMs = 8_000;
    const wharf = await startWharf({
      services: [consumer(SERVICE_MODULES.fixture('outgrown'), { failFrom: 1, failWith: 'hang' })],
      supervisor: { readyTimeoutMs },
    });
    const began = Date.now();
    const scaled = await wharf.admin('scale', 'outgrown', '2');
    const tookMs = Date.now() - began;
    expect(scaled).toMatchObject({ code: 1, stdout: '' });
    // The slot's own ready check may have ended the thread a moment before the answer: then it says so.
    expect(scaled.stderr).toMatch(
      /^wharf: Scaling outgrown to 2 consumer workers timed out: not ready within 8000 ms \(supervisor\.readyTimeoutMs\): outgrown\/consumer\/1 \((starting|last error: not ready within 8000 ms)\)\. The 1 added worker was stopped; `npm run admin -- workers` shows the service\.$/,
    );
    expect(tookMs, 'answered at the ready timeout').toBeGreaterThanOrEqual(readyTimeoutMs - 100);
    expect(tookMs, 'answered at the ready timeout').toBeLessThan(readyTimeoutMs + 3_000);
    await waitFor(async () => (await wharf.consumers('outgrown')).length === 1, { message: 'the added worker to be taken back' });
    expect(await wharf.service('outgrown')).toMatchObject({ health: 'healthy', workers: { consumer: 1 }, restarts: 0 });
  });
});
