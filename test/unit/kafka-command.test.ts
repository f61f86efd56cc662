import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compiled } from '../../src/paths.js';

/** Runs the built `wharf` command the way `npm run kafka` does, in a throwaway folder. */
const home = mkdtempSync(join(tmpdir(), 'wharf-cli-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function wharf(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [compiled('src/cli.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: home, WHARF_HOME: join(home, '.wharf'), ...env },
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

describe('npm run kafka', () => {
  it('prints help with --help and exits 0', () => {
    const { code, stdout } = wharf(['kafka', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--brokers 1|3');
  });

  it.each([
    [['kafka'], /Missing command/],
    [['kafka', 'launch'], /Unknown command "launch"/],
    [['kafka', 'start', '--bogus'], /Unknown option '--bogus'/],
    [['kafka', 'start', '--brokers', '2'], /--brokers must be one of 1, 3; got "2"/],
    [['kafka', 'start', '--port', 'abc'], /--port must be a whole number from 1024 to 65435/],
    [['kafka', 'start', '--port', '80'], /--port must be a whole number/],
    [['kafka', 'start', '--kafka-version', 'latest'], /--kafka-version must be a release like 4.4.0/],
    [['kafka', 'stop', '--brokers', '3'], /--brokers does not apply to `kafka stop`/],
    [['kafka', 'start', 'now'], /Unexpected argument "now"/],
    [['nonsense'], /Unknown command "nonsense"/],
  ])('%j fails with one clear line and exit 2', (args, message) => {
    const { code, stderr } = wharf(args);
    expect(code).toBe(2);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it('says java is missing, and what to do, when there is none', () => {
    // PATH without java: the broker cannot start.
    const { code, stderr } = wharf(['kafka', 'start'], { PATH: '/nonexistent', JAVA_HOME: '' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/needs Java 17\+, and no java was found .*Install a JDK/);
  });

  it('says mvn is missing when the jars must be fetched and there is no Maven', () => {
    const javaHome = spawnSync('java', ['-XshowSettings:properties', '-version'], { encoding: 'utf8' }).stderr.match(
      /java\.home = (.+)/,
    )?.[1];
    expect(javaHome, 'java is installed on this machine').toBeTruthy();
    const { code, stderr } = wharf(['kafka', 'start', '--port', '29092'], { PATH: '/nonexistent', JAVA_HOME: javaHome });
    expect(code).toBe(1);
    expect(stderr).toMatch(/needs Maven \(mvn\), and none is on PATH/);
  });

  it('reports a registry that cannot serve the version', () => {
    const { code, stderr } = wharf(['kafka', 'start', '--port', '29092', '--kafka-version', '0.0.1']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Could not fetch Apache Kafka 0\.0\.1 from the Maven registry/);
  });

  it('status exits 3 when no broker runs there', () => {
    const { code, stdout } = wharf(['kafka', 'status']);
    expect(code).toBe(3);
    expect(stdout).toMatch(/No local Kafka broker is running/);
  });
});
