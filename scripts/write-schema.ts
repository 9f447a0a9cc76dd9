/** Writes schema/pipeline-input.schema.json from the zod schema the handlers validate with. */
import { writeFileSync } from 'node:fs';
import { inputJsonSchema } from '../functions/shared/input';

const path = new URL('../schema/pipeline-input.schema.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(inputJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
