import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The dashboard's sessions: a random id in an HttpOnly, SameSite=Strict cookie, known to this
 * supervisor only (in memory: a restart logs everyone out). A request is let in with a live
 * session; one that changes something also needs an `Origin` of this very host (a page of
 * another site cannot send it, and SameSite=Strict already keeps the cookie from its requests).
 */
export const SESSION_TTL_MS = 12 * 60 * 60_000;
const MAX_SESSIONS = 256;

export interface Sessions {
  /** A new session; the Set-Cookie value that carries it. */
  open(now?: number): string;
  /** Whether the request carries a live session. */
  valid(request: IncomingMessage, now?: number): boolean;
  /** Ends the request's session; the Set-Cookie value that clears it. */
  close(request: IncomingMessage): string;
}

/** `cookieName` differs per listener: cookies are per host, not per port, and two supervisors of one machine must not log each other out. */
export function createSessions(cookieName: string): Sessions {
  const sessions = new Map<string, number>();
  const idOf = (request: IncomingMessage) => readCookie(request.headers.cookie, cookieName);
  return {
    open(now = Date.now()) {
      for (const [id, expires] of sessions) if (expires < now) sessions.delete(id);
      // The oldest go first when a key holder logs in over and over.
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      const id = randomBytes(32).toString('base64url');
      sessions.set(id, now + SESSION_TTL_MS);
      return `${cookieName}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`;
    },
    valid(request, now = Date.now()) {
      const id = idOf(request);
      const expires = id === undefined ? undefined : sessions.get(id);
      if (expires === undefined) return false;
      if (expires >= now) return true;
      sessions.delete(id!);
      return false;
    },
    close(request) {
      const id = idOf(request);
      if (id !== undefined) sessions.delete(id);
      return `${cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
    },
  };
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8_192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A state-changing request must come from a page of this host: `Origin` names the host the request was sent to. */
export function sameOrigin(request: IncomingMessage): boolean {
  const { origin, host } = request.headers;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  if (origin !== `http://${host}` && origin !== `https://${host}`) return false;
  const site = request.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin';
}

const UNAUTHORIZED = 'Unauthorized: open the login URL the supervisor printed, or the one `npm run admin -- dashboard` prints.\n';

/** 401 and nothing else: no data, no hint of what is behind. */
export function unauthorized(response: ServerResponse): void {
  response.writeHead(401, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(UNAUTHORIZED),
    'Cache-Control': 'no-store',
  });
  response.end(UNAUTHORIZED);
}
