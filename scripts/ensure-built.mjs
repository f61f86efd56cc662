#!/usr/bin/env node
// `npm run admin|kafka|load|bench` start here: compile only when a source is newer than the last
// build. tsc costs ~2.4 s even when nothing changed, and dist/ is what a running supervisor's
// workers load, so it is rewritten only when something did change. `npm run build` (and so
// `npm start` and `npm test`) always compiles.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// What tsconfig.json compiles, and what changes how it compiles.
const SOURCES = ['src', 'workers', 'scripts'];
const SETTINGS = ['tsconfig.json', 'package.json'];
const STAMP = join(root, 'dist', '.build-stamp');
const BUILD_INFO = join(root, 'dist', '.tsbuildinfo');
const OUTPUT = join(root, 'dist', 'src', 'cli.js');

/** The newest mtime of the .ts files under `path`, and of its folders (adding, removing or renaming a file changes its folder). */
function newest(path) {
  let latest = statSync(path).mtimeMs;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(child));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, statSync(child).mtimeMs);
  }
  return latest;
}

const mtime = (path) => (existsSync(path) ? statSync(path).mtimeMs : 0);

function upToDate() {
  if (!existsSync(OUTPUT)) return false;
  // tsc rewrites its build info whenever it emits, so `npm run build` counts as a build too
  // (like make, it cannot tell a source saved while that build ran: save again to compile it).
  const built = Math.max(mtime(STAMP), mtime(BUILD_INFO));
  const sources = Math.max(...SOURCES.map((dir) => newest(join(root, dir))), ...SETTINGS.map((file) => mtime(join(root, file))));
  return sources < built;
}

if (!upToDate()) {
  const began = new Date();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // tsc's messages go to stderr: stdout is the command's result (`--json | jq`).
  const { status, error } = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (error) throw error;
  if (status !== 0) process.exit(status ?? 1);
  // Stamped with the time the build began, so a source saved while tsc ran is compiled next time.
  writeFileSync(STAMP, '');
  utimesSync(STAMP, began, began);
}
