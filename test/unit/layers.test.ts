import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** The lint rule that keeps dependencies one way, run on the repository's own config. */
const eslint = new ESLint();

async function restricted(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rule', () => {
  it('refuses a handler importing another handler', async () => {
    const messages = await restricted('functions/rekey.ts', "import { resolveTargetKey } from './copy-encrypt';\nexport const x = resolveTargetKey;\n");
    expect(messages).toEqual([expect.stringContaining('A handler never imports another handler')]);
  });

  it('lets a handler import functions/shared', async () => {
    expect(await restricted('functions/rekey.ts', "import { where } from './shared/target';\nexport const x = where;\n")).toEqual([]);
  });

  it('refuses functions/shared or a per-action module importing a handler', async () => {
    expect(await restricted('functions/shared/images.ts', "import { copyEncrypt } from '../copy-encrypt';\nexport const x = copyEncrypt;\n")).toHaveLength(1);
    expect(await restricted('functions/verify-launch/start.ts', "import { handler } from '../verify-launch';\nexport const x = handler;\n")).toHaveLength(1);
    expect(await restricted('functions/verify-launch/start.ts', "import { where } from '../shared/target';\nexport const x = where;\n")).toEqual([]);
  });

  it('refuses the CLI importing a handler module', async () => {
    const messages = await restricted('cli/doctor.ts', "import { resolveSource } from '../functions/snapshot';\nexport const x = resolveSource;\n");
    expect(messages).toEqual([expect.stringContaining('The CLI and local tools never import a handler')]);
  });

  it('refuses shipped code importing test/', async () => {
    expect(await restricted('bench/backend.ts', "import { FakeAws } from '../test/support/fake-aws';\nexport const x = FakeAws;\n")).toEqual([
      expect.stringContaining('never imports test/'),
    ]);
  });

  it('lets the CLI import functions/shared', async () => {
    expect(await restricted('cli/doctor.ts', "import { loadInput } from '../functions/shared/resolve-source';\nexport const x = loadInput;\n")).toEqual([]);
  });
});
