import { request } from 'node:http';
import { existsSync } from 'node:fs';

/**
 * Whether a Docker engine answers, asked directly (GET /_ping) with a short deadline so that a
 * machine without one decides in milliseconds; testcontainers is imported only when one does.
 */
export function dockerSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  if (host) return undefined;
  return ['/var/run/docker.sock', `${env.HOME ?? ''}/.docker/run/docker.sock`].find((path) => existsSync(path));
}

export function isDockerReachable(env: NodeJS.ProcessEnv = process.env, timeoutMs = 1_500): Promise<boolean> {
  const socketPath = dockerSocketPath(env);
  if (env.DOCKER_HOST?.startsWith('tcp://')) return pingTcp(env.DOCKER_HOST, timeoutMs);
  if (!socketPath) return Promise.resolve(false);
  return ping({ socketPath }, timeoutMs);
}

function pingTcp(dockerHost: string, timeoutMs: number): Promise<boolean> {
  const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
  return ping({ host: url.hostname, port: Number(url.port || 2375) }, timeoutMs);
}

function ping(target: { socketPath?: string; host?: string; port?: number }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
