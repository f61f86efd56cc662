import type { Writable } from 'node:stream';
import type { AdminClient } from '../admin/client.js';
import type { LagReport } from '../metrics/lag-monitor.js';
import { writeJson } from './args.js';

/**
 * `npm run admin -- lag [--json]`: every group the deployment consumes, committed offset against
 * log end per partition, with Burrow's status (docs/observability.md), read from Kafka by the
 * supervisor (`lag` admin method), so lag shows while the consumers are down.
 */
export const LAG_HELP = `  lag                       consumer lag of every group the deployment consumes: per partition the
                            committed offset, the log end, lag and status (OK, WARN, STALL, STOP,
                            REWIND), and each group's worst; read from Kafka, so it shows with the
                            consumers down`;

export async function runLag(client: AdminClient, json: boolean, stdout: Writable): Promise<number> {
  const report = (await client.call('lag')) as LagReport;
  if (json) writeJson(stdout, report);
  else stdout.write(lagTable(report));
  return 0;
}

export function lagTable(report: LagReport): string {
  if (report.groups.length === 0) return 'This deployment consumes nothing: no consumer groups.\n';
  const out: string[] = [];
  for (const g of report.groups) {
    out.push(`${g.group}: ${g.status}, lag ${g.lag}, ${g.members} member${g.members === 1 ? '' : 's'} (${g.state})\n`);
    const rows = [
      ['TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG', 'STATUS'],
      ...g.partitions.map((p) => [
        p.topic,
        String(p.partition),
        p.committed === null ? '-' : String(p.committed),
        String(p.end),
        String(p.lag),
        p.status,
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const row of rows)
      out.push(
        `  ${row
          .map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
          .join('  ')
          .trimEnd()}\n`,
      );
  }
  const { samples, intervalMs } = report.window;
  out.push(`(statuses over the last ${samples} samples, one every ${intervalMs / 1_000} s; ${report.at})\n`);
  return out.join('');
}
