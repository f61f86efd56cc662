/** Worker-thread entry for a service's consumer role (spawned by src/supervisor). */
import { runWorker } from '../src/worker/run.js';

await runWorker('consumer');
