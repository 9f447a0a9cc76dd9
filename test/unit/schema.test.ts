import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inputJsonSchema, parseInput } from '../../functions/shared/input';

describe('the published input schema', () => {
  it('is what the handlers validate with (run npm run schema after changing functions/shared/input.ts)', () => {
    const published = JSON.parse(readFileSync(new URL('../../schema/pipeline-input.schema.json', import.meta.url), 'utf8')) as unknown;
    expect(published).toEqual(JSON.parse(JSON.stringify(inputJsonSchema())));
  });

  it('accepts the example input of the README', () => {
    const example = JSON.parse(readFileSync(new URL('../../examples/input.json', import.meta.url), 'utf8')) as unknown;
    expect(() => parseInput(example)).not.toThrow();
  });
});
