import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { InboundMessage, RoleContext, SendOptions } from '../../src/service.js';
import type { SharedState } from '../../src/state/client.js';
import type { Handled, Started } from '../../src/kafka/partition-lane.js';
import { messageContext, runHandler, startHandler } from '../../src/worker/context.js';

/** A role context whose sends stay pending until the test settles them, one by one. */
function roleWithManualSends() {
  const sends: { topic: string; value: unknown; options?: SendOptions; resolve(): void; reject(error: Error): void }[] = [];
  const base: RoleContext = {
    service: 'svc',
    role: 'consumer',
    workerId: 'svc/consumer/0',
    log: createLogger({ level: 'silent' }),
    options: {},
    state: {} as SharedState,
    send: (topic, value, options) => new Promise<void>((resolve, reject) => void sends.push({ topic, value, options, resolve, reject })),
    request: () => Promise.reject(new Error('no requests here')),
  };
  return { base, sends };
}

const message: InboundMessage = {
  value: { n: 1 },
  key: 'k',
  headers: { 'reply-to': 'answers', 'correlation-id': 'c-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
  topic: 'questions',
  partition: 3,
  offset: '41',
  timestamp: '0',
};

/** Whether `promise` has settled by the time the microtask queue is empty. */
/** What the lane does with a Started: waits for what the handler returned, then takes what it left under way. */
async function finished(started: Started): Promise<Handled> {
  await started.returned;
  return started.underway();
}

async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('runHandler: a message is finished when its sends are acknowledged', () => {
  it('waits for sends and a reply the handler did not await', async () => {
    const { base, sends } = roleWithManualSends();
    const run = runHandler(
      (_m, ctx) => {
        void ctx.send('audit', { seen: 1 });
        void ctx.reply({ ok: true });
      },
      base,
      message,
    );
    expect(await settledYet(run), 'the handler returned, its sends are still out').toBe(false);
    expect(sends.map((s) => s.topic)).toEqual(['audit', 'answers']);
    sends[0]!.resolve();
    expect(await settledYet(run)).toBe(false);
    sends[1]!.resolve();
    await expect(run).resolves.toBeUndefined();
  });

  it('fails the attempt when a send it did not await fails, so the message is retried, not committed', async () => {
    const { base, sends } = roleWithManualSends();
    const run = runHandler((_m, ctx) => void ctx.send('audit', { seen: 1 }), base, message);
    await settledYet(run);
    sends[0]!.reject(new Error('broker said no'));
    await expect(run).rejects.toThrow('broker said no');
  });

  it('fails the attempt for a failed send even when the handler caught it: what it sends is part of the message', async () => {
    const { base, sends } = roleWithManualSends();
    const run = runHandler(
      async (_m, ctx) => {
        const sending = ctx.send('elsewhere', {});
        sends[0]!.reject(new Error('refused'));
        await sending.catch(() => undefined);
      },
      base,
      message,
    );
    await expect(run).rejects.toThrow('refused');
  });

  it('fails the attempt for a send that failed before the handler returned, unawaited', async () => {
    const { base, sends } = roleWithManualSends();
    const run = runHandler(
      async (_m, ctx) => {
        void ctx.send('elsewhere', {});
        sends[0]!.reject(new Error('refused early'));
        await new Promise((resolve) => setImmediate(resolve));
      },
      base,
      message,
    );
    await expect(run).rejects.toThrow('refused early');
  });

  it('adds nothing when the handler awaited everything', async () => {
    const { base, sends } = roleWithManualSends();
    const run = runHandler(
      async (_m, ctx) => {
        const replying = ctx.reply('done');
        sends[0]!.resolve();
        await replying;
      },
      base,
      message,
    );
    await expect(run).resolves.toBeUndefined();
  });
});

describe('messageContext', () => {
  it('replies on the reply-to topic with the correlation id, the key, and a child of the traceparent', async () => {
    const { base, sends } = roleWithManualSends();
    const ctx = messageContext(base, message);
    const replying = ctx.reply({ ok: true });
    sends[0]!.resolve();
    await replying;
    const headers = sends[0]!.options!.headers!;
    expect(sends[0]).toMatchObject({ topic: 'answers', value: { ok: true }, options: { key: 'k' } });
    expect(headers['correlation-id']).toBe('c-1');
    expect(headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(headers.traceparent).not.toBe(message.headers.traceparent);
  });

  it('rejects a reply to a message without reply-to, saying what to use instead', async () => {
    const { base } = roleWithManualSends();
    const ctx = messageContext(base, { ...message, headers: {} });
    await expect(ctx.reply('x')).rejects.toThrow(/has no reply-to header: answer it with ctx\.send/);
  });
});

describe('startHandler: pipelined sends', () => {
  it('lets awaited sends and replies resolve once queued, and returns them under way until acknowledged', async () => {
    const { base, sends } = roleWithManualSends();
    const started = startHandler(
      async (_m, ctx) => {
        await ctx.send('audit', { seen: 1 });
        await ctx.reply({ ok: true });
      },
      base,
      message,
    );
    const underway = await finished(started);
    expect(sends.map((s) => s.topic)).toEqual(['audit', 'answers']);
    expect(underway).toBeDefined();
    expect(await settledYet(underway!.settled), 'nothing acknowledged yet').toBe(false);
    sends[1]!.resolve();
    expect(await settledYet(underway!.settled)).toBe(false);
    sends[0]!.resolve();
    await expect(underway!.settled).resolves.toBeUndefined();
  });

  it('settles with the first send that failed, and returns nothing when nothing was sent', async () => {
    const { base, sends } = roleWithManualSends();
    const underway = await finished(
      startHandler(
        async (_m, ctx) => {
          await ctx.send('audit', { seen: 1 });
          await ctx.send('audit', { seen: 2 });
        },
        base,
        message,
      ),
    );
    sends[1]!.reject(new Error('not enough replicas'));
    sends[0]!.resolve();
    await expect(underway!.settled).rejects.toThrow('not enough replicas');
    await expect(finished(startHandler(async () => undefined, base, message))).resolves.toBeUndefined();
    const sync = startHandler(() => undefined, base, message);
    expect(sync.returned, 'a synchronous handler: nothing to wait for').toBeUndefined();
    expect(sync.underway(), 'and when it sent nothing, done at once').toBeUndefined();
    let thenableDone = false;
    const thenable = {
      then: (resolve: () => void) =>
        setImmediate(() => {
          thenableDone = true;
          resolve();
        }),
    } as unknown as Promise<void>;
    const fromThenable = startHandler(() => thenable, base, message);
    expect(fromThenable.returned, "another library's thenable is waited on as a native promise").toBeInstanceOf(Promise);
    await fromThenable.returned;
    expect(thenableDone).toBe(true);
    expect(fromThenable.underway()).toBeUndefined();
  });

  it('still rejects a reply to a message without reply-to at once', async () => {
    const { base } = roleWithManualSends();
    const { 'reply-to': _, ...headers } = message.headers;
    await expect(finished(startHandler((_m, ctx) => ctx.reply({ ok: true }), base, { ...message, headers }))).rejects.toMatchObject({
      code: 'ERR_NO_REPLY_TO',
    });
  });
});
