/** Worker-thread entry of the round-trip benchmark's kafkajs baseline (src/load/bare-responder.ts). */
import { runBareResponder } from '../../src/load/bare-responder.js';

await runBareResponder();
