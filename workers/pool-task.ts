/**
 * Entry of a consumer worker's pool threads (see src/worker/pool-thread.ts), import()ed by
 * pool-task-entry.cts, the file piscina loads. Its default export is the task function, ready once
 * the thread has its state port and the service loaded.
 */
import { startPoolThread } from '../src/worker/pool-thread.js';

export default await startPoolThread();
