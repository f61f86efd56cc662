import { describe, expect, it, onTestFinished } from 'vitest';
import { startAdminServer } from '../../src/admin/server.js';
import { createLoginGate } from '../../src/dashboard/login.js';
import { runAdmin } from '../admin-cli.js';
import { memoryApi, silentLogger, tempDir } from './admin/fixtures.js';

const admin = runAdmin;

async function supervisorWith(http: string | undefined) {
  const home = tempDir();
  const server = await startAdminServer({ api: memoryApi().api, dir: home, logger: silentLogger, env: {}, ...(http ? { http } : {}) });
  onTestFinished(() => server.close());
  return { server, env: { WHARF_HOME: home } as NodeJS.ProcessEnv };
}

describe('npm run admin -- dashboard', () => {
  it("prints a login URL whose token the supervisor's key admits once", async () => {
    const { server, env } = await supervisorWith('127.0.0.1:9470');
    const { code, stdout } = await admin(['dashboard', '--json'], env);
    expect(code).toBe(0);
    const { url, expiresAt } = JSON.parse(stdout) as { url: string; expiresAt: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:9470\/login\?token=v1\.\d{13}\.[0-9a-f]{32}\.[0-9a-f]{64}$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    const token = new URL(url).searchParams.get('token');
    expect(token).not.toContain(server.authkey);
    const gate = createLoginGate(server.authkey);
    expect(gate.admit(token)).toBe(true);
    expect(gate.admit(token)).toBe(false);
    const plain = await admin(['dashboard'], env);
    expect(plain.stdout).toMatch(/^http:\/\/127\.0\.0\.1:9470\/login\?token=\S+\n\(one login, until /);
  });

  it('says there is no dashboard without an HTTP listener', async () => {
    const { env } = await supervisorWith(undefined);
    const { code, stderr } = await admin(['dashboard'], env);
    expect(code).toBe(1);
    expect(stderr).toContain('no HTTP listener');
  });

  it('has a help of its own and takes no arguments', async () => {
    const help = await admin(['dashboard', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run admin -- dashboard/);
    expect((await admin(['--help'], {})).stdout).toContain('dashboard                 print a one-time login URL');
    const extra = await admin(['dashboard', 'now'], {});
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('Usage: npm run admin -- dashboard');
    expect((await admin(['dashboard', '--limit', '3'], {})).stderr).toContain('--limit does not apply to `admin dashboard`');
  });
});
