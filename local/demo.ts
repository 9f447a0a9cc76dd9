/**
 * `ami-pipeline demo` (`npm run demo`): the whole pipeline on this machine. Starts moto (unless an endpoint is given with
 * --endpoint-url or AWS_ENDPOINT_URL), seeds the builder account's base image and deploys templates/target-account.yml
 * (key, alias, role) in three target accounts × two regions, runs the pipeline through the local runner with the CLI's live view,
 * prints the manifest and where each encrypted image is, stops moto.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifestSchema } from '../functions/shared/manifest-schema';
import { startMoto, type Moto } from './moto';
import { seed } from './seed';

const TARGETS = [
  { accountId: '111111111111', regions: ['eu-west-1', 'us-east-1'] },
  { accountId: '222222222222', regions: ['eu-west-1', 'us-east-1'] },
  { accountId: '333333333333', regions: ['eu-west-1', 'us-east-1'] },
];
const SOURCE_REGION = 'eu-west-1';

export interface DemoOptions {
  endpointUrl?: string;
  debug: boolean;
}

/** Where the demo writes: the CLI's stdout and stderr. */
export interface DemoIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** `run` is the CLI itself (the demo sits below it and is handed the command line to run, never imports it). */
export async function demo(options: DemoOptions, io: DemoIo, run: (argv: string[]) => Promise<number>): Promise<number> {
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  process.env.AWS_REGION ??= SOURCE_REGION;
  if (!options.debug) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let moto: Moto | undefined;
  let endpoint = options.endpointUrl ?? process.env.AWS_ENDPOINT_URL;
  const started = Date.now();
  try {
    if (!endpoint) {
      io.stderr.write('Starting moto (python3 -m moto.server) on a free loopback port...\n');
      moto = await startMoto();
      endpoint = moto.endpoint;
    }
    io.stderr.write(`Seeding ${endpoint}: the builder account's base image, and templates/target-account.yml (key, alias, role) in each of ${TARGETS.length} accounts × 2 regions...\n`);
    const { sourceImageId, keys } = await seed({ endpointUrl: endpoint, sourceRegion: SOURCE_REGION, sourceImageName: 'ami-pipeline-demo-base', targets: TARGETS });
    const dir = mkdtempSync(join(tmpdir(), 'ami-pipeline-demo-'));
    const inputPath = join(dir, 'input.json');
    const manifestPath = join(dir, 'manifest.json');
    const input = {
      source: { imageId: sourceImageId, region: SOURCE_REGION },
      targets: TARGETS.map((t) => ({ accountId: t.accountId, regions: t.regions, kmsKey: 'alias/ami-encryption' })),
      verify: { mode: 'auto-scaling' },
      publish: { parameterName: '/ami-pipeline/demo/latest' },
    };
    writeFileSync(inputPath, `${JSON.stringify(input, null, 2)}\n`);
    io.stderr.write(`Input: ${inputPath}\nRunning: ami-pipeline run --input ${inputPath} --local --endpoint-url ${endpoint} --manifest ${manifestPath}\n\n`);
    const code = await run(['run', '--input', inputPath, '--local', '--endpoint-url', endpoint, '--manifest', manifestPath, '--wait-ms', '100', '--region', SOURCE_REGION]);
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(manifestPath, 'utf8')));
    io.stdout.write('\nWhere each encrypted image is:\n');
    for (const r of manifest.results) {
      const own = keys[`${r.accountId}/${r.region}`] === r.kmsKeyArn ? "the account's own key" : 'an unexpected key';
      const parameter = r.publish?.parameterName;
      io.stdout.write(`  ${r.accountId} ${r.region.padEnd(10)} ${r.imageId ?? '-'}  encrypted with ${r.kmsKeyArn ?? '-'} (${own})\n`);
      if (parameter) io.stdout.write(`  ${' '.repeat(23)}published as ${parameter} (resolve:ssm:${parameter})\n`);
    }
    io.stdout.write(`\nManifest: ${manifestPath}\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
    return code;
  } finally {
    await moto?.stop();
  }
}

