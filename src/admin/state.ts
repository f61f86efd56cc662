import type { AdminApi } from './api.js';
import type { StateStore } from '../state/store.js';
import type { StateKind } from '../state/types.js';

/**
 * The store as the admin socket sees it: whole objects (`state.get/set/delete/snapshot/watch`)
 * and single operations run for a connection (`state.call`), whose locks and waits end with it.
 * `npm start` and the benchmarks serve the same face.
 */
export function adminStateApi(store: StateStore): AdminApi['state'] {
  return {
    describe: () => store.describe(),
    get: (name) => store.get(name),
    set: (name, value, kind) => store.set(name, value, kind as StateKind | undefined),
    delete: (name) => store.delete(name),
    snapshot: () => store.snapshot(),
    watch: (name, listener) => store.watch(name, listener),
    call: (holderId, kind, name, op, args, init) => store.execute(holderId, kind, name, op, args, init),
    release: (holderId) => store.releaseHolder(holderId),
  };
}
