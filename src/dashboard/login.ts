import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The dashboard's login tokens: proof of the deployment's authkey without the key itself. A token
 * is `v1.<expiry ms>.<nonce>.<HMAC-SHA256(key, "wharf-dashboard/1 login\0" expiry "\0" nonce)>`;
 * anyone holding the key (the supervisor at start, `npm run admin -- dashboard`) can make one,
 * the supervisor takes each nonce once (`createLoginGate`), and a token past its expiry is refused.
 */
export const LOGIN_TOKEN_TTL_MS = 60 * 60_000;
const NONCE_BYTES = 16;
const MAC_BYTES = 32;
const TOKEN = /^v1\.(\d{13})\.([0-9a-f]{32})\.([0-9a-f]{64})$/;

function mac(key: string, expires: number, nonce: string): Buffer {
  return createHmac('sha256', Buffer.from(key, 'utf8')).update(`wharf-dashboard/1 login\0${expires}\0${nonce}`, 'latin1').digest();
}

export function createLoginToken(key: string, { now = Date.now(), ttlMs = LOGIN_TOKEN_TTL_MS } = {}): string {
  const expires = now + ttlMs;
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  return `v1.${expires}.${nonce}.${mac(key, expires, nonce).toString('hex')}`;
}

/** The URL that logs a browser in: the listener's `http://HOST:PORT` (a wildcard host shown as loopback). */
export function loginUrl(httpUrl: string, token: string): string {
  const url = httpUrl.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
  return `${url}/login?token=${token}`;
}

export interface LoginGate {
  /** True once for a well-formed, unexpired token made with the key; false for anything else, and for a token used before. */
  admit(token: unknown, now?: number): boolean;
}

export function createLoginGate(key: string): LoginGate {
  // Nonces taken, until their token expires: a token logs in once.
  const used = new Map<string, number>();
  return {
    admit(token, now = Date.now()) {
      for (const [nonce, expires] of used) if (expires < now) used.delete(nonce);
      const match = typeof token === 'string' ? TOKEN.exec(token) : null;
      const expires = match ? Number(match[1]) : 0;
      const nonce = match?.[2] ?? '';
      // Compared whatever the shape, so a malformed token and a wrong one cost the same.
      const expected = mac(key, expires, nonce);
      const given = match ? Buffer.from(match[3]!, 'hex') : randomBytes(MAC_BYTES);
      if (!timingSafeEqual(expected, given) || !match || expires < now || used.has(nonce)) return false;
      used.set(nonce, expires);
      return true;
    },
  };
}
