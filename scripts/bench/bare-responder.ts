/** Worker-thread entry of the round-trip benchmark's kafkajs baseline (scripts/load/bare-responder.ts). */
import { runBareResponder } from '../load/bare-responder.js';

await runBareResponder();
