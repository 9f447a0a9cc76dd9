/** Driving `ami-pipeline` as a user would: a child process (no TTY), its output and exit code. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest, RunSummary, TargetResult } from '../../functions/shared/manifest-schema';
import { History, STUB_MAP_RUN_ARN, type Script } from './sfn-stub';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin/ami-pipeline.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI child process: this one's, without any AWS setting of this machine or of the tests, and `env`. */
export function cliEnv(env: Record<string, string>): Record<string, string | undefined> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && k !== 'MOTO_ENDPOINT'));
  return { ...base, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true', ...env };
}

/** Runs the CLI with dummy credentials and none of this machine's AWS settings. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 110_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: cliEnv({ AWS_ACCESS_KEY_ID: 'dummy', AWS_SECRET_ACCESS_KEY: 'dummy', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ami-pipeline-cli-'));
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
}

export const STUB_INPUT = {
  source: { imageId: 'ami-0123456789abcdef0', region: 'eu-west-1' },
  targets: [
    { accountId: '111111111111', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' },
    { accountId: '222222222222', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' },
  ],
};

function succeeded(accountId: string): TargetResult {
  return {
    accountId,
    region: 'eu-west-1',
    status: 'succeeded',
    imageId: `ami-0${accountId.slice(0, 16).padEnd(16, '0')}`,
    kmsKeyArn: `arn:aws:kms:eu-west-1:${accountId}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    grantId: 'f4a1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef012345',
    launchCheck: { mode: 'auto-scaling', instanceId: 'i-0123456789abcdef0', state: 'verified' },
    error: null,
  };
}

export const LAUNCH_FAILURE =
  'Launch check in 222222222222/eu-west-1: the Auto Scaling group could not launch: Client.InternalError: Client error on launch. ' +
  'Give AWSServiceRoleForAutoScaling a grant on the key';

export function stubManifest(partial: boolean): Manifest {
  const failed: TargetResult = {
    ...succeeded('222222222222'),
    status: 'failed',
    grantId: null,
    launchCheck: { mode: 'auto-scaling', instanceId: null, state: 'not-verified' },
    error: { name: 'LaunchFailedError', message: LAUNCH_FAILURE },
  };
  return {
    status: partial ? 'PARTIAL' : 'SUCCEEDED',
    executionName: 'cli-test-run',
    source: { imageId: 'ami-0123456789abcdef0', region: 'eu-west-1', accountId: '123456789012' },
    sourceShare: { revoked: true, accountIds: ['111111111111', '222222222222'], snapshotIds: ['snap-0123456789abcdef0'] },
    counts: { targets: 2, succeeded: partial ? 1 : 2, failed: partial ? 1 : 0 },
    failed: partial ? [{ accountId: '222222222222', region: 'eu-west-1', status: 'failed', error: 'LaunchFailedError' }] : [],
    manifest: { bucket: STUB_BUCKET, key: STUB_MANIFEST_KEY, uri: `s3://${STUB_BUCKET}/${STUB_MANIFEST_KEY}` },
    mapRunArn: STUB_MAP_RUN_ARN,
    results: [succeeded('111111111111'), partial ? failed : succeeded('222222222222')],
  };
}

export const STUB_BUCKET = 'ami-pipeline-runs-stub';
export const STUB_MANIFEST_KEY = 'runs/cli-test-run/manifest.json';

/** What the run itself outputs (the manifest without the lines, which are in S3). */
export function stubSummary(manifest: Manifest): RunSummary {
  const { results: _lines, ...summary } = manifest;
  return summary;
}

const item = (accountId: string) => ({
  item: { executionName: 'cli-test-run', target: { accountId, region: 'eu-west-1', kmsKey: 'alias/ami-encryption', subnetId: null } },
});

/** RUNNING for two polls (copying, then granting), then SUCCEEDED, or FAILED with RunFailedError and a PARTIAL manifest. */
export function stubScript(outcome: 'succeeded' | 'partial' | 'rejected'): Script {
  const h = new History();
  const accounts = ['111111111111', '222222222222'];
  if (outcome === 'rejected') {
    const cause = JSON.stringify({ errorType: 'SourceImageNotFoundError', errorMessage: 'Source image ami-0123456789abcdef0 not found in eu-west-1', trace: [] });
    return {
      input: STUB_INPUT,
      stages: [[h.started(), h.entered('ResolveSource', STUB_INPUT)], [h.entered('RunStopped', {}, 'FailStateEntered'), h.other('ExecutionFailed')]],
      final: { status: 'FAILED', error: 'SourceImageNotFoundError', cause },
    };
  }
  const copying = [
    h.started(),
    h.entered('ResolveSource', STUB_INPUT),
    h.entered('ShareSource', {}),
    h.entered('DistributeTargets', {}, 'MapStateEntered'),
    h.mapRunStarted(STUB_MAP_RUN_ARN),
  ];
  const b = new History();
  const batchCopying = [b.started(), ...accounts.flatMap((a) => [b.entered('IsRekeyTarget', item(a), 'ChoiceStateEntered'), b.entered('CopyEncryptImage', item(a))])];
  const granting = accounts.map((a) => b.entered('CreateKmsGrant', item(a)));
  const manifest = stubManifest(outcome === 'partial');
  const batchEnding = [
    ...accounts.map((a) => b.entered('StartLaunchCheck', item(a))),
    b.exited('RecordTargetSuccess', manifest.results[0], 'PassStateExited'),
    ...(outcome === 'partial'
      ? [
          b.entered('FindTargetCopy', { ...item('222222222222'), error: { Error: 'LaunchFailedError', Cause: 'x' } }),
          b.entered('RecordTargetFailure', { ...item('222222222222'), error: { Error: 'LaunchFailedError', Cause: LAUNCH_FAILURE } }, 'PassStateEntered'),
        ]
      : [b.exited('RecordTargetSuccess', manifest.results[1], 'PassStateExited')]),
    b.other('ExecutionSucceeded'),
  ];
  const ending = [
    h.entered('UnshareSource', {}),
    h.entered('RecordManifest', {}),
    h.other(outcome === 'partial' ? 'ExecutionFailed' : 'ExecutionSucceeded'),
  ];
  const summary = stubSummary(manifest);
  return {
    input: STUB_INPUT,
    stages: [copying, [], ending],
    child: { stages: [batchCopying, granting, batchEnding] },
    objects: { [`${STUB_BUCKET}/${STUB_MANIFEST_KEY}`]: manifest },
    final:
      outcome === 'partial'
        ? // FailRun's Lambda error, as Step Functions records it: the summary is its message (and the trace's first line).
          { status: 'FAILED', error: 'RunFailedError', cause: JSON.stringify({ errorType: 'RunFailedError', errorMessage: JSON.stringify(summary), trace: [`RunFailedError: ${JSON.stringify(summary)}`, '    at failRun (/var/task/index.js:1:1)'] }) }
        : { status: 'SUCCEEDED', output: summary },
  };
}
