/** Worker-thread entry for a service's producer role (spawned by src/supervisor). */
import { runWorker } from '../src/worker/run.js';

await runWorker('producer');
