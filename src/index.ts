/** wharf's public API. Importing it has no side effects. */
export * from './errors.js';
export { createLogger, childLogger, type Logger, type LogBindings } from './log.js';
export {
  defineService,
  type ServiceDefinition,
  type DefinedService,
  type InboundMessage,
  type MessageContext,
  type ProducerContext,
  type RoleContext,
  type SendOptions,
  type TopicSpec,
  type ObserverContext,
} from './service.js';
export { loadConfig, parseConfig, type ConfigFlags } from './config/load.js';
export { loadServices, type LoadedService } from './config/services.js';
export type { WharfConfig } from './config/schema.js';
export { startWharf, type Wharf, type WharfOptions, type WharfStopResult } from './app/start.js';
export { createSupervisor, type Supervisor, type SupervisorOptions, type StopResult } from './supervisor/supervisor.js';
export type { SupervisorStatus, WorkerStatus, ServiceStatus } from './status.js';
export { createStateStore, type StateStore } from './state/store.js';
export type { SharedState, StateChange, StateKind } from './state/types.js';
export { connectAdmin } from './admin/client.js';
export { resolveBroker, parseBrokerList, type ResolvedBroker, type BrokerSource, type ResolveOptions } from './kafka/broker.js';
export { createKafka, producerConfig, consumerConfig } from './kafka/client.js';
export { startLocalCluster, stopLocalCluster, clusterStatus, type LocalClusterOptions } from './kafka/local/cluster.js';
