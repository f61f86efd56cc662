/**
 * A strict reader of the Prometheus text format (0.0.4) for tests: every line must be a HELP, a
 * TYPE or a sample of a declared family, labels must be well quoted, each series must appear
 * once, and each histogram's buckets must be cumulative and end in +Inf equal to its _count.
 * Anything else throws with the line, so a scrape that parses is one Prometheus would take.
 */
export interface Scrape {
  types: Map<string, string>;
  /** `name{a="x",b="y"}` (labels sorted) → value. */
  series: Map<string, number>;
  /** Samples of `name` whose labels include `where`. */
  find(name: string, where?: Record<string, string>): { labels: Record<string, string>; value: number }[];
  /** Their sum (0 when there is none). */
  sum(name: string, where?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!m) throw new Error(`bad labels in: ${line}`);
    if (m[1]! in labels) throw new Error(`label ${m[1]} twice in: ${line}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value in: ${line}`);
  return Number(text);
}

const key = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;

export function parsePrometheusText(text: string): Scrape {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const series = new Map<string, number>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  if (!text.endsWith('\n')) throw new Error('the text does not end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`bad comment: ${line}`);
        continue;
      }
      const [, what, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name: ${line}`);
      if (what === 'HELP') {
        if (helps.has(name!)) throw new Error(`HELP twice: ${line}`);
        helps.add(name!);
      } else {
        if (!TYPES.has(rest!)) throw new Error(`bad type: ${line}`);
        if (types.has(name!)) throw new Error(`TYPE twice: ${line}`);
        types.set(name!, rest!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample: ${line}`);
    const [, name, labelText, valueText] = m;
    const family = [name!, name!.replace(/_(bucket|sum|count)$/, '')].find((n) => types.has(n));
    if (!family) throw new Error(`sample of an undeclared family: ${line}`);
    if (family !== name && types.get(family) !== 'histogram' && types.get(family) !== 'summary')
      throw new Error(`suffixed sample of a ${types.get(family)}: ${line}`);
    const labels = parseLabels(labelText ?? '', line);
    const value = parseValue(valueText!, line);
    if (types.get(family) === 'counter' && !(value >= 0)) throw new Error(`a counter below 0: ${line}`);
    const k = key(name!, labels);
    if (series.has(k)) throw new Error(`series twice: ${line}`);
    series.set(k, value);
    samples.push({ name: name!, labels, value });
  }
  // Histograms: buckets cumulative, +Inf equal to _count.
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, { le: number; value: number }[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${family}_bucket without le`);
      const g = key(family, rest);
      groups.set(g, [...(groups.get(g) ?? []), { le: parseValue(le, `le="${le}"`), value: s.value }]);
    }
    for (const [g, buckets] of groups) {
      buckets.sort((a, b) => a.le - b.le);
      for (let i = 1; i < buckets.length; i++)
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${g}: buckets not cumulative`);
      const last = buckets.at(-1)!;
      if (last.le !== Infinity) throw new Error(`${g}: no +Inf bucket`);
      const count = series.get(g.replace(`${family}{`, `${family}_count{`));
      if (count !== last.value) throw new Error(`${g}: _count ${count} is not the +Inf bucket ${last.value}`);
    }
  }
  const find = (name: string, where: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
      .map(({ labels, value }) => ({ labels, value }));
  return { types, series, find, sum: (name, where) => find(name, where).reduce((t, s) => t + s.value, 0) };
}
