import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compiled } from '../../src/paths.js';

/** The bench scripts run alone (compiled: `npm test` builds first) answer --help and reject a wrong flag with one line, exit 2. */
const SCRIPTS = ['state', 'pool', 'pool-sends', 'persistence', 'supervisor-startup', 'python-client', 'wake', 'drain-gc'];
const run = (script: string, args: string[]) =>
  spawnSync(process.execPath, [compiled(`scripts/bench/${script}.js`), ...args], {
    encoding: 'utf8',
    env: { ...process.env, KAFKA_BROKERS: '127.0.0.1:1' },
    timeout: 20_000,
  });

describe('bench scripts', () => {
  it.each(SCRIPTS)('%s: --help prints its usage, exit 0', (script) => {
    const result = run(script, ['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: node dist/scripts/bench/${script}\\.js `));
    expect(result.stderr).toBe('');
  });

  it.each(SCRIPTS)('%s: an unknown flag is one line on stderr, exit 2', (script) => {
    const result = run(script, ['--bogus']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `Unknown option '--bogus' for \`node dist/scripts/bench/${script}.js\`. Run \`node dist/scripts/bench/${script}.js --help\`.\n`,
    );
  });

  it('a bad value is one line naming the flag, exit 2', () => {
    const result = run('pool', ['--reps', '0']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('--reps must be a whole number from 1 to 1000; got "0". Run `node dist/scripts/bench/pool.js --help`.\n');
  });
});
