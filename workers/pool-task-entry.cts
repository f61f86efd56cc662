/**
 * What piscina loads in each pool thread, in CommonJS on purpose. Piscina require()s its task
 * file before it tries import(), and on Node 20.19+ a require() of workers/pool-task.js (an ES
 * module with top-level await) once aborted a whole test process in CI ("FATAL ERROR:
 * v8::Module::IsGraphAsync must be used on an instantiated module", from piscina's require).
 * Here that module is only ever import()ed: at once, so the thread announces itself to its owner
 * as before, and each task waits for it.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunTask } from '../src/worker/pool-thread.js';

const loaded: Promise<{ default: RunTask }> = import(pathToFileURL(join(__dirname, 'pool-task.js')).href);
// A thread that cannot start tells its owner itself ('failed'); each task gets the same error.
loaded.catch(() => undefined);

const runTask: RunTask = async (inputs) => (await loaded).default(inputs);
export = runTask;
