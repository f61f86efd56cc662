import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';

/**
 * wharf's OpenTelemetry tracer, when the application registered an SDK in this thread (see
 * docs/observability.md, Traces). Without one, everything that would trace checks
 * `activeTracer()`, finds undefined and does what it did before tracing existed: no span
 * objects, no attribute objects, not even the API's no-op spans.
 */
export const TRACER_NAME = 'wharf';

let resolved: Tracer | undefined;

/** The tracer found by the last resolveTracer(), or undefined: no SDK in this thread. */
export function activeTracer(): Tracer | undefined {
  return resolved;
}

/**
 * Looks for a tracer provider registered in this thread (call it once the instrumentation and
 * service modules ran). The API's global provider is a proxy that answers with no-op tracers
 * until an SDK sets its delegate; only a delegate counts here.
 */
export function resolveTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider() as ReturnType<typeof trace.getTracerProvider> & {
    getDelegateTracer?: (name: string) => Tracer | undefined;
  };
  resolved = typeof provider.getDelegateTracer === 'function' ? provider.getDelegateTracer(TRACER_NAME) : provider.getTracer(TRACER_NAME);
  return resolved;
}

/** `error.type` as the conventions want it: a WharfError's code, else the error's class name. */
export function errorType(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.name === 'string' ? e.name : '_OTHER';
}

/** Ends `span` as failed by `error` (status ERROR, `error.type`, the exception as an event). */
export function failSpan(span: Span, error: unknown): void {
  span.setAttribute('error.type', errorType(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error | undefined)?.message ?? String(error) });
  if (error instanceof Error) span.recordException(error);
  span.end();
}

/** Ends `span` when `work` settles, failed if it rejects; returns `work`. */
export function endWith<T>(span: Span, work: Promise<T>): Promise<T> {
  work.then(
    () => span.end(),
    (error: unknown) => failSpan(span, error),
  );
  return work;
}

/**
 * A shared-state call as a CLIENT span, child of the active span. A call outside any span starts
 * no trace of its own: a worker's bookkeeping (its `wharf.delivery` entry every second) would
 * otherwise be a trace per call. The active span is known only with a context manager, which
 * `NodeTracerProvider.register()` installs.
 */
export function traceStateCall<T>(tracer: Tracer, kind: string, name: string, op: string, call: () => Promise<T>): Promise<T> {
  const parent: Context = context.active();
  if (!trace.getSpan(parent)?.isRecording()) return call();
  const attributes: Attributes = { 'wharf.state.kind': kind, 'wharf.state.name': name, 'wharf.state.operation': op };
  const span = tracer.startSpan(`state ${kind}.${op}`, { kind: SpanKind.CLIENT, attributes }, parent);
  let work: Promise<T>;
  try {
    work = call();
  } catch (error) {
    failSpan(span, error);
    throw error;
  }
  return endWith(span, work);
}
