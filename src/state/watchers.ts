import type { Logger } from '../log.js';
import type { StateChange, StateListener } from './types.js';

/**
 * Who is watching what. Mutations ask `wants(name)` first, so nothing is built for changes nobody
 * watches; listener errors are logged and never reach the store or the caller that mutated.
 */
export interface WatchRegistry {
  wants(name: string): boolean;
  add(name: string | undefined, listener: StateListener): () => void;
  emit(change: StateChange): void;
  /** How many subscriptions there are, of any name. */
  readonly size: number;
  clear(): void;
}

export function createWatchRegistry(logger?: Logger): WatchRegistry {
  const everything = new Set<StateListener>();
  const byName = new Map<string, Set<StateListener>>();
  let size = 0;

  function deliver(listener: StateListener, change: StateChange): void {
    try {
      listener(change);
    } catch (error) {
      logger?.warn(
        { component: 'state', err: error, name: change.name },
        'a state watcher threw; the change stands and other watchers still see it',
      );
    }
  }

  return {
    wants: (name) => size > 0 && (everything.size > 0 || byName.has(name)),
    add(name, listener) {
      let set = everything;
      if (name !== undefined) {
        set = byName.get(name) ?? new Set();
        byName.set(name, set);
      }
      // A Set would swallow a second subscription of the same function; wrap so each counts once.
      const entry: StateListener = (change) => listener(change);
      set.add(entry);
      size++;
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        set.delete(entry);
        size--;
        if (name !== undefined && set.size === 0) byName.delete(name);
      };
    },
    emit(change) {
      // Copies, so a listener that unsubscribes (or subscribes) while being called does not skip anyone.
      for (const listener of [...everything]) deliver(listener, change);
      const named = byName.get(change.name);
      if (named) for (const listener of [...named]) deliver(listener, change);
    },
    get size() {
      return size;
    },
    clear() {
      everything.clear();
      byName.clear();
      size = 0;
    },
  };
}
