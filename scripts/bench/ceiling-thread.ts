/** Worker-thread entry of the bench's machine ceiling (scripts/load/bench-ceiling.ts). */
import { runCeilingThread } from '../load/bench-ceiling.js';

runCeilingThread();
