import { randomBytes } from 'node:crypto';

/**
 * The light test helpers, with no imports of wharf itself, so tests of one small part (the admin
 * socket, pure logic) can use them without loading the supervisor and Kafka. test/helpers.ts
 * re-exports them.
 */

/** A name no other test (or earlier run) uses: `topic-3f9a2c1b…`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Waits until `condition` returns truthy, or fails with `message` at the deadline. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 20_000, intervalMs = 50, message = 'condition' }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
