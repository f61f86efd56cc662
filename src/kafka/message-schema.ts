import { SchemaError } from '../errors.js';

/**
 * A schema for message values: anything implementing Standard Schema v1
 * (https://standardschema.dev) — zod (`z.object({...})`), valibot, arktype… — so wharf does not
 * tie services to one validation library. This is the part of the spec wharf reads, copied as
 * the spec intends.
 */
export interface MessageSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => SchemaResult<Output> | Promise<SchemaResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

interface SchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

type SchemaResult<Output> = { readonly value: Output; readonly issues?: undefined } | { readonly issues: ReadonlyArray<SchemaIssue> };

export function isMessageSchema(value: unknown): value is MessageSchema {
  const standard = (value as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  return typeof standard === 'object' && standard !== null && typeof standard.validate === 'function';
}

const pathOf = (issue: SchemaIssue): string[] => (issue.path ?? []).map((p) => String(typeof p === 'object' && p !== null ? p.key : p));

/** "n: Invalid input: expected number, received string; text: Required" — at most `max` issues. */
function describeIssues(issues: ReadonlyArray<SchemaIssue>, max = 5): string {
  const parts = issues.slice(0, max).map((issue) => {
    const path = pathOf(issue).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  return parts.join('; ') + (issues.length > max ? `; and ${issues.length - max} more` : '');
}

/** The validated (possibly transformed) value, or a SchemaError saying which fields failed and why. */
export async function validateMessage<Output>(schema: MessageSchema<Output>, value: unknown, what = 'value'): Promise<Output> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    throw new SchemaError(`${what} fails the schema: ${describeIssues(result.issues)}`, {
      context: { issues: result.issues.slice(0, 20).map((i) => ({ message: i.message, path: pathOf(i) })) },
    });
  }
  return result.value;
}
