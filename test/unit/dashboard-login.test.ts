import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { quantileMs } from '../../src/dashboard/history.js';
import { createLoginGate, createLoginToken, loginUrl } from '../../src/dashboard/login.js';
import { createSessions, readCookie, sameOrigin } from '../../src/dashboard/sessions.js';

const KEY = 'k'.repeat(64);
const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('dashboard login tokens', () => {
  it('let in once, before their expiry, only when made with the key', () => {
    const gate = createLoginGate(KEY);
    const token = createLoginToken(KEY);
    expect(token).not.toContain(KEY);
    expect(gate.admit(token)).toBe(true);
    expect(gate.admit(token)).toBe(false);
    expect(gate.admit(createLoginToken('another key, long enough'))).toBe(false);
    const now = Date.now();
    expect(gate.admit(createLoginToken(KEY, { now: now - 61 * 60_000 }), now)).toBe(false);
    const fresh = createLoginToken(KEY);
    const tampered = fresh.replace(/\.(\d{13})\./, (_m, expiry: string) => `.${Number(expiry) + 3_600_000}.`);
    expect(gate.admit(tampered)).toBe(false);
    for (const bad of [undefined, null, '', 'v1', 42, `${fresh}x`]) expect(gate.admit(bad)).toBe(false);
    expect(gate.admit(fresh)).toBe(true);
  });

  it('go in a URL of the listener, a wildcard host shown as loopback', () => {
    expect(loginUrl('http://0.0.0.0:9464', 't')).toBe('http://127.0.0.1:9464/login?token=t');
    expect(loginUrl('http://10.0.0.5:9464', 't')).toBe('http://10.0.0.5:9464/login?token=t');
  });
});

describe('dashboard sessions', () => {
  it('live in an HttpOnly, SameSite=Strict cookie and end at logout', () => {
    const sessions = createSessions('wharf_session_1');
    const cookie = sessions.open();
    expect(cookie).toMatch(/^wharf_session_1=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const withIt = request({ cookie: `other=1; ${cookie.split(';')[0]}` });
    expect(sessions.valid(withIt)).toBe(true);
    expect(sessions.valid(request({ cookie: 'wharf_session_1=made-up' }))).toBe(false);
    expect(sessions.valid(request({}))).toBe(false);
    expect(sessions.valid(withIt, Date.now() + 13 * 3_600_000)).toBe(false);
    const again = request({ cookie: sessions.open().split(';')[0]! });
    expect(sessions.close(again)).toMatch(/Max-Age=0/);
    expect(sessions.valid(again)).toBe(false);
    expect(readCookie('a=1; b = 2', 'b')).toBe('2');
  });

  it('take state-changing requests only from a page of the same host', () => {
    expect(sameOrigin(request({ host: '127.0.0.1:9464', origin: 'http://127.0.0.1:9464' }))).toBe(true);
    expect(sameOrigin(request({ host: 'wharf.example', origin: 'https://wharf.example' }))).toBe(true);
    expect(sameOrigin(request({ host: '127.0.0.1:9464' }))).toBe(false);
    expect(sameOrigin(request({ host: '127.0.0.1:9464', origin: 'http://evil.example' }))).toBe(false);
    expect(sameOrigin(request({ host: '127.0.0.1:9464', origin: 'null' }))).toBe(false);
    expect(sameOrigin(request({ host: '127.0.0.1:9464', origin: 'http://127.0.0.1:9464', 'sec-fetch-site': 'cross-site' }))).toBe(false);
  });
});

describe('the overview latency', () => {
  it('is a percentile of the bucket counts, interpolated within its bucket', () => {
    // 10 in 0–5 ms, 10 in 5–10 ms.
    expect(quantileMs([10, 10, 0], 0.5)).toBe(5);
    expect(quantileMs([10, 10, 0], 0.95)).toBe(9.5);
    expect(quantileMs([0, 0, 0], 0.5)).toBeNull();
  });
});
