/** One node of a local KRaft cluster: broker and controller in one JVM, on loopback only. */
export interface NodeSpec {
  nodeId: number;
  port: number;
  controllerPort: number;
  /** Folder with server.properties, data/ and logs/. */
  dir: string;
}

/** Extra broker settings for every node (fault tests shorten how long a dead broker takes to be fenced). */
export type NodeSettings = Record<string, string | number>;

/**
 * server.properties for one combined-mode node of an `nodes.length`-node cluster. Replication
 * follows the cluster's size: a single node replicates nothing; three nodes default every topic
 * (internal ones included) to replication factor 3 with min.insync.replicas 2, so one node can
 * be lost without losing acknowledged writes — the setting fault tests need.
 */
export function nodeProperties(node: NodeSpec, nodes: readonly NodeSpec[], overrides: NodeSettings = {}): string {
  const replication = Math.min(3, nodes.length);
  const minIsr = replication >= 3 ? 2 : 1;
  const voters = nodes.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',');
  const settings: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': node.nodeId,
    'controller.quorum.voters': voters,
    listeners: `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': `${node.dir}/data`,
    'num.partitions': 1,
    'default.replication.factor': replication,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': replication,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': replication,
    'transaction.state.log.min.isr': minIsr,
    'share.coordinator.state.topic.replication.factor': replication,
    'share.coordinator.state.topic.min.isr': minIsr,
    // A consumer group that forms right away instead of waiting 3 s for more members.
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': 'true',
    ...overrides,
  };
  return Object.entries(settings)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n');
}

/** Client and controller ports for `count` nodes from a base port: 9092, 9093, … and 9192, 9193, …. */
export function portsFrom(base: number, count: number): { port: number; controllerPort: number }[] {
  return Array.from({ length: count }, (_, i) => ({ port: base + i, controllerPort: base + 100 + i }));
}
