/**
 * Where the HTTP listener listens: `HOST:PORT` (`[::1]:9464` for IPv6; port 0 picks a free one)
 * or `off`. One parser for the config's `http` and `wharf start --http`.
 */
export interface HttpAddress {
  host: string;
  port: number;
}

export const DEFAULT_HTTP_ADDRESS = '127.0.0.1:9464';

export const HTTP_ADDRESS_RULE = 'HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464; port 0 picks a free one) or "off"';

/** The address, null for `off`, or undefined when `text` is neither. */
export function parseHttpAddress(text: string): HttpAddress | null | undefined {
  if (text === 'off') return null;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  return { host: match[1] ?? match[2]!, port };
}
