/**
 * Each function's bundle, built as it deploys (local/bundle.ts: serverless.yml's esbuild settings and plugins), holds
 * the AWS SDK clients that function uses and no other, and stays under a size ceiling. Sizes are deterministic for a
 * given lockfile: a ceiling that fails means something new got bundled; raise it only when that is intended.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundles, type Bundle } from '../../local/bundle';

/** The SDK clients (package names without `@aws-sdk/client-`) each function sends commands with. STS: AssumeRole. */
const USES: Record<string, string[]> = {
  snapshot: ['ec2', 'kms', 'organizations', 's3', 'ssm', 'sts'],
  modifyAttributes: ['ec2', 'sfn', 'sts'],
  preflight: ['ec2', 'iam', 'kms', 'sts'],
  copyEncrypt: ['ec2', 'kms', 'sts'],
  createGrant: ['kms', 'sts'],
  verifyLaunch: ['auto-scaling', 'ec2', 'sts'],
  publish: ['ec2', 'ssm', 'sts'],
  retention: ['ec2', 'ssm', 'sts'],
  rekey: ['ec2', 'kms', 'ssm', 'sts'],
  recordManifest: ['s3', 'sts'],
  notify: ['eventbridge', 'sns', 'sts'],
  janitor: ['s3', 'sfn', 'sts'],
  startExecution: ['sfn', 'sts'],
};

/** Minified bytes, about 12% above the sizes measured when the clients were split per function (433-560 KiB). */
const CEILING_KIB: Record<string, number> = {
  // + the S3 client: ResolveSource writes the run's targets file for the Distributed Map.
  snapshot: 720,
  modifyAttributes: 490,
  preflight: 580,
  copyEncrypt: 540,
  createGrant: 520,
  verifyLaunch: 580,
  publish: 610,
  retention: 620,
  rekey: 610,
  recordManifest: 560,
  notify: 520,
  // + the S3 client: the stopped run's targets file.
  janitor: 720,
  startExecution: 490,
};

let bundles: Bundle[];

beforeAll(async () => {
  bundles = await buildBundles(undefined, { metafile: true });
}, 60_000);
afterAll(() => {
  if (bundles[0]) rmSync(dirname(bundles[0].file), { recursive: true, force: true });
});

function inputs(bundle: Bundle): [string, number][] {
  if (!bundle.output) throw new Error(`no metafile output for ${bundle.name}`);
  return Object.entries(bundle.output.inputs).map(([path, input]) => [path, input.bytesInOutput]);
}

/** Per SDK client in a bundle: whether its client class is there, and its commands. */
function sdkClients(bundle: Bundle): Map<string, { clientClass: boolean; commands: string[] }> {
  const clients = new Map<string, { clientClass: boolean; commands: string[] }>();
  for (const [path] of inputs(bundle)) {
    const match = /@aws-sdk\/client-([^/]+)\/dist-es\/(.+)$/.exec(path);
    if (!match?.[1] || !match[2]) continue;
    const entry = clients.get(match[1]) ?? { clientClass: false, commands: [] };
    clients.set(match[1], entry);
    if (/^\w+Client\.js$/.test(match[2])) entry.clientClass = true;
    const command = /^commands\/(\w+)\.js$/.exec(match[2])?.[1];
    if (command) entry.commands.push(command);
  }
  return clients;
}

describe('function bundles', () => {
  it('bundle every function of serverless.yml', () => {
    expect(bundles.map((b) => b.name).sort()).toEqual(Object.keys(USES).sort());
  });

  it('hold the SDK clients their function uses and no other', () => {
    for (const bundle of bundles) {
      expect([...sdkClients(bundle).keys()].sort(), bundle.name).toEqual(USES[bundle.name]);
    }
  });

  it("hold the client class of every client whose commands they send (the function's clientFactory names it)", () => {
    for (const bundle of bundles) {
      for (const [client, { clientClass, commands }] of sdkClients(bundle)) {
        expect(commands.length, `${bundle.name}: ${client} without commands`).toBeGreaterThan(0);
        expect(clientClass, `${bundle.name}: sends ${commands.join(', ')} but bundles no ${client} client class`).toBe(true);
      }
    }
  });

  it('leave out the SDK schemas no imported command reaches (esbuild-plugins.cjs)', () => {
    for (const bundle of bundles) {
      for (const [path, bytes] of inputs(bundle).filter(([p]) => /@aws-sdk\/.+\/schemas\/schemas_\d+\.js$/.test(p))) {
        expect(bytes, `${bundle.name}: ${path}`).toBeLessThan(100 * 1024);
      }
    }
  });

  it("leave out zod's translations (import * as z from 'zod', not { z })", () => {
    for (const bundle of bundles) {
      const locales = inputs(bundle)
        .map(([path]) => /zod\/v4\/locales\/([\w-]+)\.js$/.exec(path)?.[1])
        .filter((locale) => locale !== undefined);
      expect(locales, bundle.name).toEqual(['en']);
    }
  });

  it('stay under their size ceilings', () => {
    for (const bundle of bundles) {
      const kib = (bundle.output?.bytes ?? Infinity) / 1024;
      expect(kib, `${bundle.name}: ${kib.toFixed(1)} KiB`).toBeLessThanOrEqual(CEILING_KIB[bundle.name] ?? 0);
    }
  });
});
