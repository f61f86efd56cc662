import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WharfError } from './errors.js';

/**
 * Where wharf's own files live. Code runs both compiled (dist/src/…) and as TypeScript under
 * vitest (src/…), so paths are found by walking up to wharf's package.json, never by counting
 * `..` from the current file.
 */
let cachedRoot: string | undefined;

export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'wharf') {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new WharfError('ERR_INSTALL', `wharf cannot find its own package.json above ${fileURLToPath(import.meta.url)}: reinstall it.`);
    dir = parent;
  }
}

/** The compiled JavaScript of a file in wharf's tree: `compiled('workers/consumer.js')`. */
export function compiled(relativeJs: string): string {
  return join(packageRoot(), 'dist', relativeJs);
}

/** Per-project state (local broker, connection files): `.wharf/` in the working folder, or WHARF_HOME. */
export function stateHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.WHARF_HOME ?? '.wharf');
}
