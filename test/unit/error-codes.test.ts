import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, errorCodesMarkdown, isErrorCode } from '../../src/error-codes.js';
import { fromWireError } from '../../src/admin/protocol.js';
import { packageRoot } from '../../src/paths.js';

describe('error codes', () => {
  it('docs/errors.md is the registry as written (regenerate: node dist/scripts/error-docs.js > docs/errors.md)', () => {
    expect(readFileSync(join(packageRoot(), 'docs', 'errors.md'), 'utf8')).toBe(errorCodesMarkdown());
  });

  it('every code a Python client raises is in the registry', () => {
    const python = readFileSync(join(packageRoot(), 'clients', 'python', 'wharf_client', 'client.py'), 'utf8');
    const raised = [...python.matchAll(/WharfError\("(ERR_[A-Z_]+)"/g)].map((m) => m[1]!);
    expect(raised.length).toBeGreaterThan(0);
    expect(raised.filter((code) => !isErrorCode(code))).toEqual([]);
  });

  it('says what to do for every code', () => {
    for (const [code, [area, meaning]] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^ERR_[A-Z_]+$/);
      expect(area.length, code).toBeGreaterThan(0);
      expect(meaning.length, code).toBeGreaterThan(20);
    }
  });

  it('keeps a code from a newer server that this client does not know, under ERR_ADMIN_PROTOCOL', () => {
    const error = fromWireError({ code: 'ERR_FROM_THE_FUTURE', message: 'new' });
    expect(error.code).toBe('ERR_ADMIN_PROTOCOL');
    expect(error.context).toMatchObject({ wireCode: 'ERR_FROM_THE_FUTURE' });
    expect(fromWireError({ code: 'ERR_BUSY', message: 'later', retriable: true })).toMatchObject({ code: 'ERR_BUSY', retriable: true });
  });
});
