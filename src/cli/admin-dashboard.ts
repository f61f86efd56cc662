import type { Writable } from 'node:stream';
import { adminKey, type AdminClient, type ConnectAdminOptions } from '../admin/client.js';
import { WharfError } from '../errors.js';
import { createLoginToken, LOGIN_TOKEN_TTL_MS, loginUrl } from '../dashboard/login.js';
import { writeJson } from './args.js';

export const DASHBOARD_HELP = `  dashboard                 print a one-time login URL for the supervisor's web dashboard (valid 1 h)
`;

export const DASHBOARD_COMMAND_HELP = `Usage: npm run admin -- dashboard [--json] [--dir D] [--key-file F]

Prints a login URL for the web dashboard of the supervisor started from this folder:

  http://127.0.0.1:9464/login?token=v1.<expiry>.<nonce>.<HMAC of the deployment's key>

The token is made here from the admin key (the 0600 key file, or WHARF_AUTHKEY); the key itself
never goes into it. It logs one browser in, once, within an hour; the browser then holds a session
cookie (HttpOnly, SameSite=Strict) for 12 hours. Run the command again for another browser.
A listener on 0.0.0.0 is shown as 127.0.0.1: use the host's name from elsewhere.

Flags:
  --json          {"url", "expiresAt"} on stdout
  --dir D         folder of the supervisor's connection file (default .wharf, or WHARF_HOME)
  --key-file F    read the authkey from F
  --timeout MS    how long to wait for the supervisor (default 5000)
  -h, --help      this help

docs/observability.md, Dashboard: what each page shows and how to reach it from another host.
`;

/** Checks the key against the running supervisor (the connected client), then signs a login token with it. */
export function runDashboard(client: AdminClient, options: ConnectAdminOptions, json: boolean, stdout: Writable): number {
  const { key, info } = adminKey(options);
  if (!info?.http) {
    throw new WharfError(
      'ERR_NO_DASHBOARD',
      `The supervisor (pid ${client.server.pid}) has no HTTP listener, so no dashboard: start it without --http off (config "http").`,
    );
  }
  const now = Date.now();
  const url = loginUrl(`http://${info.http}`, createLoginToken(key, { now }));
  const expiresAt = new Date(now + LOGIN_TOKEN_TTL_MS).toISOString();
  if (json) writeJson(stdout, { url, expiresAt });
  else stdout.write(`${url}\n(one login, until ${expiresAt})\n`);
  return 0;
}
