import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers of src/ drawn in docs/architecture.md: a folder (or top-level file) imports only
 * from rows below its own, never from its own row or above, so there is no cycle between folders
 * and the picture stays true. Type-only imports count too. A new folder must be given a row here
 * and in the picture.
 */
const ROWS: readonly (readonly string[])[] = [
  ['error-codes'],
  ['errors'],
  ['log', 'paths', 'status', 'delivery', 'thread-metrics', 'tracing'],
  ['state', 'kafka', 'http'],
  ['persist', 'service', 'protocol'],
  ['config', 'pool', 'metrics'],
  ['admin', 'supervisor', 'worker'],
  ['cluster', 'dashboard'],
  ['app'],
  ['cli', 'index'],
];

const SRC = resolve(__dirname, '..', '..', 'src');
const rowOf = new Map(ROWS.flatMap((row, i) => row.map((unit) => [unit, i] as const)));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** `kafka` for src/kafka/local/cluster.ts, `protocol` for src/protocol.ts. */
function unitOf(file: string): string {
  const [first, ...rest] = relative(SRC, file).split(sep);
  return rest.length > 0 ? first! : first!.replace(/\.[jt]s$/, '');
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)].map(
    (m) => m[1] ?? m[2]!,
  );
}

describe('the layers of src/', () => {
  const files = sources(SRC);
  const edges = files.flatMap((file) => imports(file).map((spec) => ({ file: relative(SRC, file), target: resolve(dirname(file), spec) })));

  it('give every folder and top-level file a row', () => {
    expect([...new Set(files.map(unitOf))].filter((unit) => !rowOf.has(unit))).toEqual([]);
  });

  it('never import upward, sideways or out of src/', () => {
    const wrong = edges.flatMap(({ file, target }) => {
      if (relative(SRC, target).startsWith('..')) return [`${file} imports ${relative(SRC, target)} (outside src/)`];
      const from = unitOf(join(SRC, file));
      const to = unitOf(target);
      if (from === to || rowOf.get(to)! < rowOf.get(from)!) return [];
      return [`${file} (${from}, row ${rowOf.get(from)}) imports ${relative(SRC, target)} (${to}, row ${rowOf.get(to)})`];
    });
    expect(wrong).toEqual([]);
  });

  it('reads the imports it checks', () => {
    // The rule above would pass on a parser that finds nothing.
    expect(edges.length).toBeGreaterThan(300);
    expect(edges.some(({ file, target }) => file === join('app', 'start.ts') && unitOf(target) === 'supervisor')).toBe(true);
  });
});
