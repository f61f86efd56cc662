import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { connect } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, WharfError } from '../../src/errors.js';
import { parseHttpAddress } from '../../src/http/address.js';
import { startHttpListener } from '../../src/http/server.js';
import { compiled } from '../../src/paths.js';
import { testLogger } from '../helpers.js';

async function listener(options: { port?: number; fallbackToFreePort?: boolean } = {}) {
  const http = await startHttpListener({ host: '127.0.0.1', port: 0, logger: testLogger(), ...options });
  onTestFinished(() => http.close());
  return http;
}

/** Raw bytes to the listener, and what came back before it closed the connection. */
function raw(address: string, bytes: string): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) }, () => socket.write(bytes));
    let answer = '';
    socket.on('data', (d) => (answer += String(d)));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(bytes)}`)));
  });
}

describe('the HTTP listener', () => {
  it('serves its routes, 404s other paths and 405s other methods', async () => {
    const http = await listener();
    http.route('GET', '/hello', (_request, response, url) => {
      response.end(`hello ${url.searchParams.get('name') ?? 'you'}`);
    });
    http.route('POST', '/hello', (_request, response) => void response.writeHead(204).end());
    expect(http.url).toBe(`http://${http.address}`);

    const ok = await fetch(`${http.url}/hello?name=tony`);
    expect([ok.status, await ok.text()]).toEqual([200, 'hello tony']);
    expect((await fetch(`${http.url}/hello`, { method: 'POST' })).status).toBe(204);
    expect((await fetch(`${http.url}/hello`, { method: 'HEAD' })).status).toBe(200);

    const missing = await fetch(`${http.url}/nope`);
    expect([missing.status, await missing.text()]).toEqual([404, 'no such path: /nope\n']);
    const wrong = await fetch(`${http.url}/hello`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST, HEAD');
  });

  it('answers garbage with 400 and a throwing handler with 500, and keeps serving', async () => {
    const http = await listener();
    http.route('GET', '/boom', () => {
      throw new Error('handler bug');
    });
    http.route('GET', '/ok', (_request, response) => void response.end('ok'));

    expect(await raw(http.address, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(http.address, `GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(http.address, `GET http://[bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 4\d\d /);
    const boom = await fetch(`${http.url}/boom`);
    expect([boom.status, await boom.text()]).toEqual([500, 'internal error (logged by the supervisor)\n']);
    expect(await (await fetch(`${http.url}/ok`)).text()).toBe('ok');
  });

  it('fails on a taken port with ERR_HTTP_LISTEN, or moves to a free one when asked to', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0 }, resolve));
    onTestFinished(() => void taken.close());
    const port = (taken.address() as { port: number }).port;

    const error = await listener({ port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WharfError);
    expect((error as WharfError).code).toBe('ERR_HTTP_LISTEN');
    expect((error as WharfError).message).toContain(`Cannot listen for HTTP on 127.0.0.1:${port}`);

    const moved = await listener({ port, fallbackToFreePort: true });
    expect(moved.address).not.toBe(`127.0.0.1:${port}`);
    expect(moved.address).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('refuses a route served twice', async () => {
    const http = await listener();
    http.route('GET', '/x', () => undefined);
    expect(() => http.route('GET', '/x', () => undefined)).toThrow('GET /x is served already.');
  });
});

describe('the HTTP address', () => {
  it.each([
    ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['off', null],
  ])('%s parses', (text, address) => expect(parseHttpAddress(text)).toEqual(address));

  it.each(['9464', 'localhost', ':9464', '127.0.0.1:65536', '127.0.0.1:-1', 'on', 'a b:1'])('%s is refused', (text) =>
    expect(parseHttpAddress(text)).toBeUndefined(),
  );

  it('defaults to 127.0.0.1:9464, which the config file and --http replace', () => {
    const services = [{ module: 'echo.mjs' }];
    expect(parseConfig({ services }, 'test', '/').http).toEqual({ host: '127.0.0.1', port: 9464, explicit: false });
    expect(parseConfig({ services, http: '0.0.0.0:9100' }, 'test', '/').http).toEqual({ host: '0.0.0.0', port: 9100, explicit: true });
    expect(parseConfig({ services, http: 'off' }, 'test', '/').http).toBeNull();
    expect(parseConfig({ services, http: 'off' }, 'test', '/', { http: '127.0.0.1:0' }).http).toEqual({
      host: '127.0.0.1',
      port: 0,
      explicit: true,
    });
  });

  it('in the config file, a bad one names the field', () => {
    const error = (() => {
      try {
        return parseConfig({ services: [{ module: 'echo.mjs' }], http: 'everywhere' }, 'test', '/');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('http: must be HOST:PORT');
  });

  it('on the command line, a bad one is a usage error (exit 2) before anything starts', () => {
    const result = spawnSync(process.execPath, [compiled('src/cli.js'), 'start', '--http', 'everywhere'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, KAFKA_BROKERS: '127.0.0.1:1' },
      timeout: 30_000,
    });
    expect(result.stderr.trim()).toMatch(/^.*--http must be HOST:PORT .*; got "everywhere"\.$/);
    expect(result.status).toBe(2);
  });
});
