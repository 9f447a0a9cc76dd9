/**
 * The local runner on Node 22 as well as on this machine's Node 20: the CLI's `run --local` under Node 22
 * (the `node@22` npm package, fetched by npx), against moto. aws-local-stepfunctions needs
 * Promise.withResolvers, which the runner polyfills on Node 20 only.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../functions/shared/manifest-schema';
import { conforms } from '../support/run-output';
import { seed } from '../../local/seed';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE22 = ['-y', '-p', 'node@22.23.3', '--', 'node'];

async function node22Available(): Promise<boolean> {
  try {
    const { stdout } = await promisify(execFile)('npx', [...NODE22, '--version'], { timeout: 120_000 });
    return stdout.trim().startsWith('v22.');
  } catch {
    if (process.env.CI) throw new Error('npx could not fetch the node@22 package from the npm registry');
    console.warn('node@22 could not be fetched with npx: skipping the Node 22 run');
    return false;
  }
}

const ready = MOTO_AVAILABLE && (await node22Available());

describe.skipIf(!ready)('the local runner on Node 22', () => {
  const suite = motoSuite();

  it('runs the pipeline through the CLI and reports SUCCEEDED', async () => {
    const accountId = uniqueAccount('51');
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: 'eu-west-1',
      sourceImageName: 'ami-pipeline-node22-base',
      targets: [{ accountId, regions: ['eu-west-1'] }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'node22-'));
    writeFileSync(join(dir, 'input.json'), JSON.stringify({
      source: { imageId: sourceImageId, region: 'eu-west-1' },
      targets: [{ accountId, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }],
    }));
    const args = ['node_modules/tsx/dist/cli.mjs', 'bin/ami-pipeline.mjs', 'run', '--input', join(dir, 'input.json'), '--local',
      '--endpoint-url', suite.moto.endpoint, '--region', 'eu-west-1', '--manifest', join(dir, 'manifest.json'), '--debug'];
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('npx', [...NODE22, ...args], {
        cwd: ROOT,
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(result.stderr).not.toContain('withResolvers');
    expect(result.code).toBe(0);
    const manifest = conforms(manifestSchema, JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), 'the manifest the CLI wrote');
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.map((r) => r.accountId)).toEqual([accountId]);
  }, 180_000);
});
