import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { packageRoot } from '../../src/paths.js';

describe("the config file's JSON Schema", () => {
  it('is the zod schema as written (regenerate: node dist/scripts/config-schema.js > docs/wharf.config.schema.json)', () => {
    const file = JSON.parse(readFileSync(join(packageRoot(), 'docs', 'wharf.config.schema.json'), 'utf8'));
    expect(file).toEqual(configJsonSchema());
  });

  it('names every top-level key of the config and refuses others, as wharf does', () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown>; additionalProperties: unknown; required: string[] };
    expect(Object.keys(schema.properties).sort()).toEqual([
      '$schema',
      'cluster',
      'http',
      'kafka',
      'services',
      'state',
      'supervisor',
      'tracing',
    ]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['services']);
  });

  it('lets a config point its editor at the schema', () => {
    const config = parseConfig(
      { $schema: './node_modules/wharf/docs/wharf.config.schema.json', services: [{ module: 'echo.mjs' }] },
      'test.json',
      '/tmp',
    );
    expect(config.services).toHaveLength(1);
  });
});
