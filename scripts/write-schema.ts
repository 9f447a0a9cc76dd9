/**
 * Writes the published JSON Schemas from the zod schemas the code validates with: the execution input
 * (functions/shared/input.ts) and the run's output, the summary, the manifest and the completion event's detail
 * (functions/shared/manifest-schema.ts). test/unit/schema.test.ts fails when a committed file is not current.
 */
import { writeFileSync } from 'node:fs';
import { inputJsonSchema } from '../functions/shared/input';
import { outputJsonSchemas } from '../functions/shared/manifest-schema';

const files: Record<string, Record<string, unknown>> = { 'pipeline-input.schema.json': inputJsonSchema(), ...outputJsonSchemas() };
for (const [name, schema] of Object.entries(files)) {
  const path = new URL(`../schema/${name}`, import.meta.url);
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path.pathname}`);
}
