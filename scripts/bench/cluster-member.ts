/**
 * One member of a deployment in a process of its own, for the cluster bench's failover measure
 * (scripts/load/bench-cluster.ts kills it with SIGKILL): joins, prints "serving" once it owns
 * partitions of the state, then waits.
 *
 *   node dist/scripts/bench/cluster-member.js BROKERS NAME SESSION_TIMEOUT_MS
 */
import { createDeployment } from '../../src/cluster/deployment.js';
import { createLogger } from '../../src/log.js';

const [brokers, name, session] = process.argv.slice(2);
if (!brokers || !name || !(Number(session) > 0)) {
  process.stderr.write('Usage: node dist/scripts/bench/cluster-member.js BROKERS NAME SESSION_TIMEOUT_MS\n');
  process.exit(2);
}
const deployment = createDeployment({
  name,
  topic: name,
  persist: ['*'],
  brokers: brokers.split(','),
  logger: createLogger({ level: 'warn', fd: 2 }),
  sessionTimeoutMs: Number(session),
});
await deployment.join({ address: '' });
process.stdout.write(deployment.served().length > 0 ? 'serving\n' : 'standby\n');
setInterval(() => undefined, 60_000);
