/** wharf's public API. Importing it has no side effects. */
export * from './errors.js';
export { createLogger, childLogger, type Logger, type LogBindings } from './log.js';
export { resolveBroker, parseBrokerList, type ResolvedBroker, type BrokerSource, type ResolveOptions } from './kafka/broker.js';
export { createKafka, producerConfig, consumerConfig } from './kafka/client.js';
export { startLocalCluster, stopLocalCluster, clusterStatus, type LocalClusterOptions } from './kafka/local/cluster.js';
