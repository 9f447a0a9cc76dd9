/**
 * `serverless package` once per content: the packaged stack (CloudFormation template and zips) is kept under
 * node_modules/.cache, keyed by a hash of everything that goes into it, so the package test and the IAM policy
 * test (which runs in another worker) share one packaging instead of paying for two.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const CACHE = join(ROOT, 'node_modules', '.cache', 'ami-pipeline-package');
/** Inputs of the package: the service file, the state machines, the code it bundles and the locked dependencies. */
const INPUTS = ['serverless.yml', 'serverless-iam.cjs', 'esbuild-plugins.cjs', 'package-lock.json', 'statemachine', 'functions'];
export const PACKAGE_STAGE = 'test';
export const PACKAGE_REGION = 'eu-west-1';

function files(path: string): string[] {
  const full = join(ROOT, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).sort().flatMap((name) => files(join(path, name)));
}

function inputHash(): string {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap(files)) hash.update(relative(ROOT, join(ROOT, file))).update('\0').update(readFileSync(join(ROOT, file)));
  return hash.digest('hex').slice(0, 16);
}

export type PackagedTemplate = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>; Outputs: Record<string, unknown> };

/** The directory of the packaged stack (stage "test", eu-west-1), packaging it when the inputs changed. */
export function packagedDir(): string {
  const dir = join(CACHE, inputHash());
  if (existsSync(join(dir, 'cloudformation-template-update-stack.json'))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, 'work-'));
  execFileSync(join(ROOT, 'node_modules', '.bin', 'serverless'), ['package', '--package', work, '--stage', PACKAGE_STAGE, '--region', PACKAGE_REGION], {
    cwd: ROOT,
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_REGION: PACKAGE_REGION, SLS_TELEMETRY_DISABLED: '1' },
    stdio: 'pipe',
    timeout: 180_000,
  });
  // Another worker may have packaged the same inputs meanwhile: keep theirs.
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true });
  }
  for (const old of readdirSync(CACHE)) {
    if (old !== dir.split('/').pop() && !old.startsWith('work-')) rmSync(join(CACHE, old), { recursive: true, force: true });
  }
  return dir;
}

export function packagedTemplate(): PackagedTemplate {
  return JSON.parse(readFileSync(join(packagedDir(), 'cloudformation-template-update-stack.json'), 'utf8')) as PackagedTemplate;
}
