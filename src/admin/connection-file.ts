import { lstatSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WharfError } from '../errors.js';
import { ErrorCodes, isPlainObject } from './protocol.js';

/**
 * The file through which `npm run admin` finds the supervisor started from the same folder:
 * `<dir>/admin.json`, written once listening and removed on close. It holds no secret; the key
 * is in WHARF_AUTHKEY ("env") or in the 0600 key file it names.
 */
export const CONNECTION_FILE = 'admin.json';
export const KEY_FILE = 'admin.key';
export const SOCKET_FILE = 'admin.sock';
export const CONNECTION_FILE_VERSION = 1;

export type AdminTransport = 'unix' | 'tcp';

export interface ConnectionInfo {
  version: number;
  pid: number;
  transport: AdminTransport;
  /** A socket path (unix) or 127.0.0.1:PORT (tcp). */
  address: string;
  /** Absolute path of the key file, or "env" when the key comes from WHARF_AUTHKEY. */
  keyFile: string;
  startedAt: string;
  /** The supervisor's HTTP listener (`/metrics`), HOST:PORT, when it has one. */
  http?: string;
}

export function connectionFilePath(dir: string): string {
  return join(dir, CONNECTION_FILE);
}

/** Written to a temporary name and renamed, so a reader never sees half a file. */
export function writeConnectionFile(dir: string, info: ConnectionInfo): void {
  const path = connectionFilePath(dir);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}

/** The connection file, undefined when there is none, or an error saying it is not ours. */
export function readConnectionFile(dir: string): ConnectionInfo | undefined {
  const path = connectionFilePath(dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WharfError(ErrorCodes.noSupervisor, `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch {
    info = undefined;
  }
  if (!isConnectionInfo(info)) {
    throw new WharfError(
      ErrorCodes.noSupervisor,
      `${path} is not a wharf connection file (version ${CONNECTION_FILE_VERSION}): remove it and restart the supervisor.`,
    );
  }
  return info;
}

function isConnectionInfo(value: unknown): value is ConnectionInfo {
  return (
    isPlainObject(value) &&
    value.version === CONNECTION_FILE_VERSION &&
    Number.isSafeInteger(value.pid) &&
    (value.pid as number) > 0 &&
    (value.transport === 'unix' || value.transport === 'tcp') &&
    typeof value.address === 'string' &&
    value.address.length > 0 &&
    typeof value.keyFile === 'string' &&
    value.keyFile.length > 0 &&
    typeof value.startedAt === 'string' &&
    (value.http === undefined || typeof value.http === 'string')
  );
}

/** Removes the file only while it still describes `info`: a newer supervisor may have replaced it. */
export function removeConnectionFile(dir: string, info: ConnectionInfo): void {
  try {
    const current = readConnectionFile(dir);
    if (current && current.pid === info.pid && current.startedAt === info.startedAt && current.address === info.address) {
      rmSync(connectionFilePath(dir), { force: true });
    }
  } catch {
    // Not ours to judge: a file we cannot read or parse was not written by this server.
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, which is still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function noSupervisorError(dir: string, detail?: string): WharfError {
  return new WharfError(
    ErrorCodes.noSupervisor,
    `no supervisor running in ${dir}${detail ? ` (${detail})` : ''}: start one with npm start`,
    { context: { dir } },
  );
}

/** The live supervisor's connection info in `dir`, or ERR_NO_SUPERVISOR with the way out. */
export function findSupervisor(dir: string): ConnectionInfo {
  const info = readConnectionFile(dir);
  if (!info) throw noSupervisorError(dir);
  if (!isProcessAlive(info.pid)) throw noSupervisorError(dir, `${CONNECTION_FILE} names pid ${info.pid}, which has exited`);
  return info;
}

/** Refuses to start a second admin server where a live one has its connection file. */
export function refuseIfInUse(dir: string): void {
  let existing: ConnectionInfo | undefined;
  try {
    existing = readConnectionFile(dir);
  } catch {
    return; // unreadable or foreign: the new server replaces it
  }
  if (existing && isProcessAlive(existing.pid)) {
    throw new WharfError(
      ErrorCodes.inUse,
      `a supervisor (pid ${existing.pid}) already serves the admin socket in ${dir}: stop it first or use another WHARF_HOME (if pid ${existing.pid} is not a supervisor, remove ${connectionFilePath(dir)}).`,
      { context: { dir, pid: existing.pid } },
    );
  }
}

/** sun_path holds 108 bytes on Linux and 104 on macOS, each with a trailing NUL. */
export const MAX_UNIX_PATH_BYTES = 103;

/**
 * `<dir>/admin.sock`, or, when that path is too long for a socket, one in a private (0700, random
 * name) folder under the temporary directory; the connection file records whichever it is.
 */
export function unixSocketPath(dir: string): { path: string; privateDir?: string } {
  const preferred = join(dir, SOCKET_FILE);
  if (Buffer.byteLength(preferred) <= MAX_UNIX_PATH_BYTES) return { path: preferred };
  const base = Buffer.byteLength(tmpdir()) <= 64 ? tmpdir() : '/tmp';
  const privateDir = mkdtempSync(join(base, 'wharf-'));
  return { path: join(privateDir, SOCKET_FILE), privateDir };
}

/** A socket file left by a supervisor that died; only ever a socket, never another kind of file. */
export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
  } catch {
    // absent: nothing to do
  }
}
