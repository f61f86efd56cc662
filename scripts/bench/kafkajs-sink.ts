/** Worker-thread entry of the benchmarks' kafkajs baselines (scripts/load/kafkajs-sink.ts). */
import { runKafkajsSinkThread } from '../load/kafkajs-sink.js';

await runKafkajsSinkThread();
