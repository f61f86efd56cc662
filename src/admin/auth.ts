import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { ConfigError, WharfError } from '../errors.js';
import { ErrorCodes, isHex } from './protocol.js';

/**
 * The admin socket's authkey and its HMAC challenge–response (docs/protocol.md, "Handshake").
 * Both sides prove they hold the key without sending it: the client so the server lets it in, the
 * server so a client never trusts answers from a process that merely took over the address.
 */
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
/** A guessable key defeats the HMAC; random keys are 64 hex characters. */
export const MIN_AUTHKEY_LENGTH = 16;

export type ProofRole = 'client' | 'server';

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function generateAuthkey(): string {
  return randomBytes(32).toString('hex');
}

/** `key` if it is usable, else a ConfigError saying where it came from and what is needed. */
export function checkAuthkey(key: string, source: string): string {
  if (Buffer.byteLength(key) < MIN_AUTHKEY_LENGTH) {
    throw new ConfigError(`${source} must be at least ${MIN_AUTHKEY_LENGTH} characters (a random one: \`openssl rand -hex 32\`).`, {
      context: { field: source },
    });
  }
  return key;
}

/**
 * HMAC-SHA256 keyed by the key's UTF-8 bytes over "wharf-admin/1 client" (or "server"), one zero
 * byte, the server's nonce and the client's nonce. The role label keeps a server's proof from
 * being replayed as a client's.
 */
export function computeProof(key: string, role: ProofRole, serverNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return createHmac('sha256', Buffer.from(key, 'utf8'))
    .update(`wharf-admin/1 ${role}\0`, 'latin1')
    .update(serverNonce)
    .update(clientNonce)
    .digest();
}

/**
 * Whether `given` (hex from the wire) equals `expected`, in time that does not depend on where
 * they differ. A malformed value is still compared (against random bytes) so that a wrong
 * shape and a wrong key cost the same.
 */
export function proofMatches(expected: Buffer, given: unknown): boolean {
  const wellFormed = isHex(given, PROOF_BYTES);
  const candidate = wellFormed ? Buffer.from(given, 'hex') : randomBytes(PROOF_BYTES);
  return timingSafeEqual(expected, candidate) && wellFormed;
}

/** Writes a fresh key file readable by its owner only (0600), replacing any old one. */
export function writeKeyFile(path: string, key: string): void {
  // Unlink first: writeFileSync's mode applies only to new files, and an old one may be wider.
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
}

export function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'EACCES'
        ? 'run as the user that started the supervisor, or set WHARF_AUTHKEY'
        : 'is the supervisor still running? Set WHARF_AUTHKEY if it takes its key from there';
    throw new WharfError(ErrorCodes.noAuthkey, `cannot read the admin key file ${path} (${code ?? 'error'}): ${hint}.`, { cause: error });
  }
}
