import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { compiled } from '../../../src/paths.js';
import { startAdminServer } from '../../../src/admin/server.js';
import { runAdmin } from '../../admin-cli.js';
import { memoryApi, silentLogger, tempDir, waitFor } from './fixtures.js';

const admin = runAdmin;

/** A supervisor stand-in whose connection and key files are where `npm run admin` looks: WHARF_HOME. */
async function supervisor(
  objects: Record<string, { kind: string; value: unknown }> = {
    hits: { kind: 'counter', value: 42 },
    jobs: { kind: 'list', value: ['a', 'b'] },
  },
) {
  const memory = memoryApi(objects);
  const home = tempDir();
  const server = await startAdminServer({ api: memory.api, dir: home, logger: silentLogger, env: {} });
  onTestFinished(() => server.close());
  return { ...memory, server, env: { WHARF_HOME: home } as NodeJS.ProcessEnv };
}

function oneJsonObject(stdout: string): Record<string, unknown> {
  expect(stdout.trimEnd().split('\n'), 'exactly one line on stdout').toHaveLength(1);
  const value = JSON.parse(stdout);
  expect(value).toBeTypeOf('object');
  return value;
}

describe('npm run admin', () => {
  it('lists shared objects for people and for programs, with no flags to find the supervisor', async () => {
    const { env } = await supervisor();
    const table = await admin(['state'], env);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toBe('NAME  KIND     SIZE\nhits  counter  1\njobs  list     2\n');
    const json = await admin(['state', '--json'], env);
    expect(oneJsonObject(json.stdout)).toEqual({
      objects: [
        { name: 'hits', kind: 'counter', size: 1 },
        { name: 'jobs', kind: 'list', size: 2 },
      ],
    });
    expect(await admin(['state', 'jobs'], env)).toMatchObject({ code: 0, stdout: 'jobs (list)\n[\n  "a",\n  "b"\n]\n' });
    expect(oneJsonObject((await admin(['state', 'hits', '--json'], env)).stdout)).toEqual({ name: 'hits', kind: 'counter', value: 42 });
  });

  it('sets, deletes and snapshots objects', async () => {
    const { env, objects } = await supervisor();
    expect(await admin(['set', 'greeting', '{"text":"hi"}'], env)).toMatchObject({ code: 0, stdout: 'set greeting (value)\n' });
    expect(objects.get('greeting')).toEqual({ kind: 'value', value: { text: 'hi' } });
    const setN = await admin(['set', 'n', '--kind', 'counter', '--json', '--', '-5'], env);
    expect(setN.stderr).toBe('');
    expect(oneJsonObject(setN.stdout)).toEqual({ name: 'n', kind: 'counter', value: -5 });
    expect(await admin(['delete', 'greeting'], env)).toMatchObject({ code: 0, stdout: 'deleted greeting\n' });
    expect(objects.has('greeting')).toBe(false);
    const snapshot = oneJsonObject((await admin(['snapshot', '--json'], env)).stdout);
    expect(snapshot).toEqual({
      at: expect.any(String),
      objects: { hits: { kind: 'counter', value: 42 }, jobs: { kind: 'list', value: ['a', 'b'] }, n: { kind: 'counter', value: -5 } },
    });
    expect((await admin(['snapshot'], env)).stdout).toBe('hits (counter) 42\njobs (list) ["a","b"]\nn (counter) -5\n');
  });

  it('shows services and workers as tables, or the status as one object, and scales', async () => {
    const { env, api } = await supervisor();
    const { code, stdout } = await admin(['workers'], env);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^supervisor pid \d+, up 1 min 1 s, brokers 127\.0\.0\.1:9092\n/);
    expect(stdout).toMatch(
      /SERVICE +HEALTH +CONSUMERS +PRODUCERS +RESTARTS +HANDLED\ntony +healthy +1 +1 +0 +10\njarvis +healthy +2 +1 +0 +20\n/,
    );
    expect(stdout).toMatch(
      /WORKER +SERVICE +ROLE +STATE +RESTARTS +HANDLED +HEAP +LAST HEARTBEAT\ntony\/consumer\/0 +tony +consumer +ready +0 +10 +12\.0 MiB +\d+\.\d s ago\n/,
    );
    expect(oneJsonObject((await admin(['workers', '--json'], env)).stdout)).toMatchObject({
      pid: process.pid,
      services: [{ name: 'tony' }, { name: 'jarvis' }],
    });
    expect(await admin(['scale', 'tony', '3'], env)).toMatchObject({ code: 0, stdout: 'tony: 3 consumer workers (healthy)\n' });
    expect(api.status().services[0]!.workers.consumer).toBe(3);
    expect(oneJsonObject((await admin(['scale', 'jarvis', '1', '--json'], env)).stdout)).toMatchObject({
      service: { name: 'jarvis', workers: { consumer: 1 } },
    });
  });

  it('streams changes until --count, one JSON object per line with --json', async () => {
    const { env, api, listenerCount } = await supervisor();
    const running = admin(['watch', 'hits', '--json', '--count', '2'], env);
    await waitFor(() => listenerCount() === 1, { message: 'the watch to be registered' });
    api.state.set('other', 1);
    api.state.set('hits', 43);
    api.state.set('hits', 44);
    const { code, stdout } = await running;
    expect(code).toBe(0);
    expect(
      stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { name: 'hits', kind: 'counter', op: 'set', value: 43, at: expect.any(Number) },
      { name: 'hits', kind: 'counter', op: 'set', value: 44, at: expect.any(Number) },
    ]);
    await waitFor(() => listenerCount() === 0, { message: 'the watch to end with the command' });
  });

  it('ends a watch with a clear line and exit 1 when the supervisor stops', async () => {
    const { env, server, listenerCount } = await supervisor();
    const running = admin(['watch'], env);
    await waitFor(() => listenerCount() === 1, { message: 'the watch to be registered' });
    await server.close();
    expect(await running).toEqual({
      code: 1,
      stdout: '',
      stderr: 'wharf: the supervisor closed the watch: the supervisor is shutting down',
    });
  });

  it.each([
    [['state', 'nope'], 1, /^wharf: no shared object named "nope" in the supervisor \(pid \d+\): `npm run admin -- state` lists them\.$/],
    [['delete', 'nope'], 1, /^wharf: no shared object named "nope"/],
    [['scale', 'nobody', '2'], 1, /^wharf: no service named "nobody": services are tony, jarvis$/],
    [['scale', 'tony', '65'], 2, /^wharf: The worker count for `admin scale` must be a whole number from 1 to 64; got "65"\.$/],
    [['scale', 'tony', '0'], 2, /^wharf: The worker count for `admin scale` must be a whole number from 1 to 64; got "0"\.$/],
    [['scale', 'tony', 'many'], 2, /^wharf: The worker count for `admin scale` must be a whole number from 1 to 64; got "many"\.$/],
    [['set', 'x', '{bad'], 2, /^wharf: The value for `admin set` must be JSON \(.*\); quote strings for the shell: '"text"'\.$/],
    [['set', 'x', 'text'], 2, /^wharf: The value for `admin set` must be JSON/],
    [['set', 'x'], 2, /^wharf: Usage: npm run admin -- set <name> <json-value>$/],
    [['state', '--bogus'], 2, /^wharf: Unknown option '--bogus' for `npm run admin`\. Run `npm run admin --help`\.$/],
    [['workers', '--kind', 'x'], 2, /^wharf: --kind does not apply to `admin workers`/],
    [['frobnicate'], 2, /^wharf: Unknown command "frobnicate": use state, watch, workers, set, delete, snapshot, scale, ping/],
    [['constructor'], 2, /^wharf: Unknown command "constructor"/],
    [[], 2, /^wharf: Missing command/],
    [['watch', '--count', '0'], 2, /^wharf: --count must be a whole number from 1/],
  ])('%j fails with one clear line and exit %i', async (args, exit, message) => {
    const { env } = await supervisor();
    const { code, stdout, stderr } = await admin(args, env);
    expect({ code, stderr }).toEqual({ code: exit, stderr: expect.stringMatching(message) });
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stdout).toBe('');
  });

  it('says no supervisor is running, and how to start one, when there is none', async () => {
    const home = tempDir();
    expect(await admin(['workers'], { WHARF_HOME: home })).toEqual({
      code: 1,
      stdout: '',
      stderr: `wharf: no supervisor running in ${home}: start one with npm start`,
    });
    expect(await admin(['state', '--dir', home], {})).toMatchObject({
      code: 1,
      stderr: `wharf: no supervisor running in ${home}: start one with npm start`,
    });
  });

  it('rejects a wrong key with one line', async () => {
    const home = tempDir();
    const server = await startAdminServer({
      api: memoryApi().api,
      dir: home,
      logger: silentLogger,
      env: { WHARF_AUTHKEY: 'the-right-key-0123456789' },
    });
    onTestFinished(() => server.close());
    expect(await admin(['state'], { WHARF_HOME: home, WHARF_AUTHKEY: 'wrong-key-0123456789' })).toEqual({
      code: 1,
      stdout: '',
      stderr: `wharf: authentication failed: the supervisor at ${server.address} rejected the key from WHARF_AUTHKEY.`,
    });
    expect(await admin(['state'], { WHARF_HOME: home })).toEqual({
      code: 1,
      stdout: '',
      stderr: `wharf: the supervisor in ${home} takes its key from WHARF_AUTHKEY: set it to the same value here.`,
    });
    expect(await admin(['ping'], { WHARF_HOME: home, WHARF_AUTHKEY: 'the-right-key-0123456789' })).toMatchObject({ code: 0 });
  });

  it('uses the supervisor’s key file over a WHARF_AUTHKEY left in the shell', async () => {
    const { env } = await supervisor();
    expect(await admin(['ping'], { ...env, WHARF_AUTHKEY: 'some-other-projects-key' })).toMatchObject({ code: 0, stderr: '' });
  });

  it('connects by --address with the key from --key-file', async () => {
    const { server } = await supervisor();
    const elsewhere = tempDir();
    expect(await admin(['ping', '--address', server.address, '--dir', elsewhere], {})).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no authkey: set WHARF_AUTHKEY/),
    });
    const { code, stdout } = await admin(
      [
        'ping',
        '--json',
        '--address',
        server.address,
        '--key-file',
        `${server.connectionFile.replace(/admin\.json$/, 'admin.key')}`,
        '--dir',
        elsewhere,
      ],
      {},
    );
    expect(code).toBe(0);
    expect(oneJsonObject(stdout)).toMatchObject({ pid: process.pid, address: server.address });
  });

  it('prints help', async () => {
    const { code, stdout } = await admin(['--help'], {});
    expect(code).toBe(0);
    expect(stdout).toContain('scale <service> <n>');
    expect(stdout).toContain('no flag for the key itself');
  });

  it('runs as a separate process: watch prints changes until Ctrl-C and exits 0', async () => {
    expect(existsSync(compiled('src/cli/admin.js')), 'run `npm run build` first: this test runs the compiled command').toBe(true);
    const { env, api, listenerCount } = await supervisor();
    const child = spawn(process.execPath, [compiled('src/cli.js'), 'admin', 'watch'], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      await waitFor(() => listenerCount() === 1, { message: `the child's watch (stderr: ${stderr})`, timeoutMs: 15_000 });
      api.state.set('jobs', ['a', 'b', 'c']);
      await waitFor(() => stdout.includes('\n'), { message: 'a line from the child' });
      expect(stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}jobs {2}list {2}set {2}\["a","b","c"\]\n$/);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      await waitFor(() => listenerCount() === 0, { message: 'the watch to end with the process' });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** The compiled `wharf admin …` as a process whose stdout is a pipe to this test; killed when the test ends. */
function adminProcess(args: string[], env: NodeJS.ProcessEnv) {
  expect(existsSync(compiled('src/cli.js')), 'run `npm run build` first: this test runs the compiled command').toBe(true);
  const child = spawn(process.execPath, [compiled('src/cli.js'), 'admin', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  // 'close': the process exited and both pipes were read to their end.
  const closed = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const ended = (timeoutMs = 30_000) =>
    Promise.race([
      closed.then((code) => ({ code, stderr })),
      new Promise<never>((_, fail) =>
        setTimeout(() => fail(new Error(`admin ${args.join(' ')} did not end within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs),
      ),
    ]);
  return { child, ended, exited: () => child.exitCode !== null };
}

/** A map like the demo's conversation after a long run, about 4 MB as JSON: far more than a pipe holds. */
function bigConversation(): Record<string, unknown> {
  return Object.fromEntries(
    Array.from({ length: 25_000 }, (_, i) => [
      String(i + 1),
      { n: i + 1, question: `Question ${i + 1}: what is ${i} + ${i}?`, answer: `${2 * i}, says Jarvis, at your service ${'.'.repeat(80)}` },
    ]),
  );
}

describe('npm run admin through a pipe', () => {
  it('delivers a multi-megabyte --json whole to a slow reader', async () => {
    const conversation = bigConversation();
    const { env } = await supervisor({ conversation: { kind: 'map', value: conversation } });
    const { child, ended } = adminProcess(['state', 'conversation', '--json'], env);
    // A slow reader: a pause after every chunk, so the pipe is still full when the command is done.
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 2);
    });
    expect(await ended()).toEqual({ code: 0, stderr: '' });
    const output = Buffer.concat(chunks);
    expect(output.length, 'bytes through the pipe').toBeGreaterThan(3_000_000);
    expect(JSON.parse(output.toString('utf8'))).toEqual({ name: 'conversation', kind: 'map', value: conversation });
  });

  it('ends quietly with 0 when the reader stops early (| head): a big --json, and a watch', async () => {
    const { env, api, listenerCount } = await supervisor({ conversation: { kind: 'map', value: bigConversation() } });

    const state = adminProcess(['state', 'conversation', '--json'], env);
    state.child.stdout.once('data', () => state.child.stdout.destroy());
    expect(await state.ended()).toEqual({ code: 0, stderr: '' });

    // A watch writes only when something changes: the first change after the reader left fails with EPIPE.
    const watch = adminProcess(['watch', '--json'], env);
    watch.child.stdout.once('data', () => watch.child.stdout.destroy());
    await waitFor(() => listenerCount() === 1, { message: 'the watch to be registered' });
    let n = 0;
    await waitFor(() => (api.state.set('hits', ++n), watch.exited()), { message: 'the watch to end once its reader is gone' });
    expect(await watch.ended()).toEqual({ code: 0, stderr: '' });
  });
});
