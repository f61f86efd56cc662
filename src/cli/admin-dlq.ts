import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { DeadLetterDetail, DeadLetterEntry } from '../admin/dead-letter.js';
import type { AdminClient } from '../admin/client.js';
import { intFlag, writeJson } from './args.js';

/** `npm run admin -- dlq …`: the dead letters of the running supervisor's topics. */
export const DLQ_USAGE = 'dlq list [topic] [--limit N] | dlq show <id> | dlq replay <id>... | dlq replay <topic> --all';

export const DLQ_HELP = `  dlq list [topic]          dead letters (of one topic, or of every consumed topic): id, origin, reason, attempts, time
  dlq show <id>             one dead letter with its headers and value (<id> as list prints it: <dlq-topic>/<partition>/<offset>)
  dlq replay <id>...        send those dead letters back to their original topic (original key, value and headers)
  dlq replay <topic> --all  the same for every dead letter of a topic not replayed yet
`;

const ID = /^.+\/\d{1,9}\/\d{1,19}$/;

export type DlqRequest =
  | { action: 'list'; params: { topic?: string; limit?: number } }
  | { action: 'show'; params: { id: string } }
  | { action: 'replay'; params: { topic?: string; ids?: string[]; all?: boolean } };

function checkId(id: string): string {
  if (!ID.test(id))
    throw new UsageError(
      `"${id}" is not a dead-letter id: use <dlq-topic>/<partition>/<offset> as \`npm run admin -- dlq list\` prints it.`,
    );
  return id;
}

/** The request for `dlq <args>`, checked before connecting so a typo fails fast. */
export function parseDlq(args: string[], flags: { limit?: string; all?: boolean }): DlqRequest {
  const [action, ...rest] = args;
  const usage = () => new UsageError(`Usage: npm run admin -- ${DLQ_USAGE}`);
  if (flags.all && action !== 'replay') throw new UsageError('--all applies to `dlq replay <topic> --all` only.');
  if (flags.limit !== undefined && action !== 'list') throw new UsageError('--limit applies to `dlq list` only.');
  switch (action) {
    case 'list':
      if (rest.length > 1) throw usage();
      return {
        action,
        params: {
          ...(rest[0] ? { topic: rest[0] } : {}),
          ...(flags.limit ? { limit: intFlag(flags.limit, 'limit', { min: 1, max: 10_000, fallback: 100 }) } : {}),
        },
      };
    case 'show':
      if (rest.length !== 1) throw usage();
      return { action, params: { id: checkId(rest[0]!) } };
    case 'replay':
      if (flags.all) {
        if (rest.length !== 1 || ID.test(rest[0]!))
          throw new UsageError('Usage: npm run admin -- dlq replay <topic> --all (a topic, not dead-letter ids).');
        return { action, params: { topic: rest[0]!, all: true } };
      }
      if (rest.length === 0)
        throw new UsageError('Say which dead letters to replay: dlq replay <id>... (ids from `dlq list`), or dlq replay <topic> --all.');
      if (new Set(rest.map((id) => id.slice(0, id.indexOf('/')))).size > 1)
        throw new UsageError('Replay the dead letters of one topic at a time.');
      return { action, params: { ids: rest.map(checkId) } };
    default:
      throw usage();
  }
}

function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return (
    [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n'
  );
}

export async function runDlq(client: AdminClient, request: DlqRequest, json: boolean, stdout: Writable): Promise<number> {
  const result = await client.call(`dlq.${request.action}`, request.params);
  if (json) {
    writeJson(stdout, result);
    return 0;
  }
  if (request.action === 'list') {
    const { entries, topics } = result as { entries: DeadLetterEntry[]; topics: { topic: string; count: number }[] };
    for (const t of topics)
      stdout.write(
        `${t.topic}: ${t.count} dead letter${t.count === 1 ? '' : 's'}${t.count > entries.filter((e) => e.dlqTopic === t.topic).length ? ` (the last ${entries.filter((e) => e.dlqTopic === t.topic).length} shown)` : ''}\n`,
      );
    if (entries.length === 0) return 0;
    stdout.write('\n');
    stdout.write(
      table(
        ['ID', 'FROM', 'CODE', 'ATTEMPTS', 'AT', 'REPLAYED', 'REASON'],
        entries.map((e) => [
          e.id,
          `${e.topic}/${e.originalPartition ?? '?'}/${e.originalOffset ?? '?'}`,
          e.code,
          String(e.attempts),
          e.at,
          e.replayedAt ? 'yes' : '-',
          clip(e.reason, 100),
        ]),
      ),
    );
  } else if (request.action === 'show') {
    const d = result as DeadLetterDetail;
    const lines = [
      `${d.id}`,
      `  from       ${d.topic} partition ${d.originalPartition ?? '?'} offset ${d.originalOffset ?? '?'}`,
      `  reason     ${d.code}: ${d.reason}`,
      `  attempts   ${d.attempts}`,
      `  parked at  ${d.at}`,
      `  replayed   ${d.replayedAt ?? 'no'}`,
      `  key        ${d.key === null ? '(none)' : JSON.stringify(d.key)}`,
      `  headers    ${
        Object.entries(d.headers)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n             ') || '(none)'
      }`,
      `  value      ${d.valueDropped ? `(${d.bytes} bytes, not kept: too big for the dead-letter topic)` : d.value === null ? '(null)' : d.valueEncoding === 'base64' ? `(base64, ${d.bytes} bytes) ${clip(d.value, 2_000)}` : clip(d.value, 2_000)}`,
    ];
    stdout.write(`${lines.join('\n')}\n`);
  } else {
    const { replayed, skipped } = result as { replayed: { id: string; topic: string }[]; skipped: { id: string; reason: string }[] };
    stdout.write(
      `replayed ${replayed.length} dead letter${replayed.length === 1 ? '' : 's'}${replayed.length ? ` to ${[...new Set(replayed.map((r) => r.topic))].join(', ')}` : ''}\n`,
    );
    for (const s of skipped) stdout.write(`skipped ${s.id}: ${s.reason}\n`);
  }
  return 0;
}
