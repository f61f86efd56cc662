import type { ObjectInit } from '../state/messages.js';
import type { StateKind } from '../state/types.js';
import type { SupervisorStatus } from '../status.js';
import type { StateChange } from './protocol.js';

/** What the supervisor lets the admin socket see and do; the server is generic over it. */
export interface AdminApi {
  state: {
    describe(): { name: string; kind: string; size: number }[];
    get(name: string): { kind: string; value: unknown } | undefined;
    set(name: string, value: unknown, kind?: string): void;
    delete(name: string): boolean;
    snapshot(): Record<string, { kind: string; value: unknown }>;
    /** `partition`: a deployment member watching one partition of the shared state on its owner (src/cluster/). */
    watch(name: string | undefined, listener: (change: StateChange) => void, partition?: number): () => void;
    /**
     * `state.call`: one operation (already checked against STATE_CALL_OPS) in the name of
     * `holderId`, one holder per connection; its result, or a promise of it when it waits. Given
     * together with `release`, which the server calls when that connection closes.
     */
    call?(holderId: string, kind: StateKind, name: string, op: string, args: unknown[], init?: ObjectInit): unknown;
    /** Frees what the holder held (locks, permits) and cancels its waits. */
    release?(holderId: string): void;
  };
  status(): SupervisorStatus;
  scale(service: string, consumers: number): Promise<SupervisorStatus>;
  /** More methods by wire name (`dlq.list` …): params as sent, result must be JSON-encodable. */
  extra?: Record<string, (params: unknown) => Promise<unknown>>;
}
