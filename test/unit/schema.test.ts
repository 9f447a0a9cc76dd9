import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inputJsonSchema, parseInput } from '../../functions/shared/input';
import { outputJsonSchemas } from '../../functions/shared/manifest-schema';

const published = (name: string) => JSON.parse(readFileSync(new URL(`../../schema/${name}`, import.meta.url), 'utf8')) as unknown;

describe('the published schemas', () => {
  it('input: is what the handlers validate with (run npm run schema after changing functions/shared/input.ts)', () => {
    expect(published('pipeline-input.schema.json')).toEqual(JSON.parse(JSON.stringify(inputJsonSchema())));
  });

  it('summary, manifest and completion event: are what the code writes and reads with (run npm run schema after changing functions/shared/manifest-schema.ts)', () => {
    const schemas = outputJsonSchemas();
    expect(Object.keys(schemas).sort()).toEqual(['completion-event.schema.json', 'manifest.schema.json', 'run-summary.schema.json']);
    for (const [name, schema] of Object.entries(schemas)) expect(published(name), name).toEqual(JSON.parse(JSON.stringify(schema)));
  });

  it('accepts the example input of the README', () => {
    const example = JSON.parse(readFileSync(new URL('../../examples/input.json', import.meta.url), 'utf8')) as unknown;
    expect(() => parseInput(example)).not.toThrow();
  });
});
