/**
 * The real definition, run with aws-local-stepfunctions, our handlers plugged in, over the in-memory AWS of
 * bench/fake-aws.ts. Asserts the path taken, the retries, the manifest and what is left in AWS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B, BUILDER } from '../support/fixtures';
import { runDefinition, type EventLog, type Json, type RunResult } from '../../local/asl';
import { pipelineHandlers } from '../../bench/handlers';
import type { Manifest } from '../../functions/shared/manifest-schema';
import { checkEventsAndRestore, manifestOf as checkedManifest, summaryOf } from '../support/run-output';

let aws: FakeAws;
let sourceImage: string;
const keys: Record<string, string> = {};

function input(overrides: Record<string, Json> = {}): Json {
  return {
    source: { imageId: sourceImage, region: 'eu-west-1' },
    targets: [
      { accountId: ACCOUNT_A, regions: ['eu-west-1', 'us-east-1'], kmsKey: 'alias/ami-encryption' },
      { accountId: ACCOUNT_B, regions: ['eu-west-1', 'us-east-1'], kmsKey: 'alias/ami-encryption' },
    ],
    ...overrides,
  };
}

const entered = (events: EventLog[], state: string) => events.filter((e) => e.type === 'StateEntered' && e.state?.name === state).length;
const retried = (events: EventLog[], state: string) => events.filter((e) => e.type === 'StateRetried' && e.state?.name === state).length;

function manifestOf(run: RunResult): Manifest {
  const manifest = checkedManifest(run);
  // The run outputs its summary; the manifest adds each target's line from the batch executions.
  if (run.output) expect({ ...summaryOf(run), results: manifest.results }).toEqual(manifest);
  if (run.error?.name === 'RunFailedError') expect(summaryOf(run).status).toBe(manifest.status);
  return manifest;
}
function leftRunning(): string[] {
  return [...aws.instances.values()].filter((i) => i.state !== 'terminated').map((i) => i.id);
}

beforeEach(() => {
  aws = new FakeAws();
  sourceImage = aws.addSourceImage('eu-west-1');
  for (const account of [ACCOUNT_A, ACCOUNT_B]) {
    for (const region of ['eu-west-1', 'us-east-1']) keys[`${account}/${region}`] = aws.addKey(account, region);
  }
});
afterEach(() => checkEventsAndRestore(aws));

describe('the pipeline state machine', () => {
  it('copies, grants and verifies every account and region, then unshares the source', async () => {
    const run = await runDefinition(input(), pipelineHandlers(), { executionName: 'happy' });
    expect(run.error).toBeUndefined();
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.sourceShare?.revoked).toBe(true);
    expect(manifest.results).toHaveLength(4);
    for (const r of manifest.results) {
      expect(r.status).toBe('succeeded');
      expect(r.kmsKeyArn).toBe(keys[`${r.accountId}/${r.region}`]);
      const copy = aws.images.get(r.imageId ?? '');
      expect(copy).toMatchObject({ account: r.accountId, region: r.region, state: 'available', kmsKeyId: r.kmsKeyArn });
      expect(r.grantId).toMatch(/^grant-/);
      expect(r.launchCheck).toMatchObject({ mode: 'auto-scaling', state: 'verified' });
      expect(r.error).toBeNull();
    }
    // One grant per key, for that account's Auto Scaling role, made from inside that account.
    for (const call of aws.callsTo('CreateGrant')) {
      expect(String(call.input.GranteePrincipal)).toBe(
        `arn:aws:iam::${call.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
      );
      expect(String(call.input.KeyId)).toBe(keys[`${call.account}/${call.region}`]);
    }
    expect(aws.callsTo('CreateGrant')).toHaveLength(4);
    // Copies ran in the target accounts and regions, never in the builder account.
    expect(aws.callsTo('CopyImage').map((c) => `${c.account}/${c.region}`).sort()).toEqual(
      [`${ACCOUNT_A}/eu-west-1`, `${ACCOUNT_A}/us-east-1`, `${ACCOUNT_B}/eu-west-1`, `${ACCOUNT_B}/us-east-1`],
    );
    expect(aws.images.get(sourceImage)?.launchPermission.size).toBe(0);
    expect(leftRunning()).toEqual([]);
    expect(aws.groups.size).toBe(0);
    expect(aws.templates.size).toBe(0);
    expect(entered(run.events, 'GetImageState')).toBeGreaterThanOrEqual(4);
  });

  it('runs again without new copies, grants or instances left behind', async () => {
    await runDefinition(input(), pipelineHandlers(), { executionName: 'first' });
    const copies = aws.callsTo('CopyImage').length;
    const grants = aws.grants.length;
    const second = await runDefinition(input(), pipelineHandlers(), { executionName: 'second' });
    expect(manifestOf(second).status).toBe('SUCCEEDED');
    expect(aws.callsTo('CopyImage')).toHaveLength(copies);
    expect(aws.grants).toHaveLength(grants);
    expect(leftRunning()).toEqual([]);
  });

  it('retries a throttled call and succeeds', async () => {
    aws.throttleOnce.add('CopyImage');
    aws.throttleOnce.add('CreateGrant');
    aws.throttleOnce.add('ModifyImageAttribute');
    const run = await runDefinition(input({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }), pipelineHandlers());
    expect(manifestOf(run).status).toBe('SUCCEEDED');
    expect(retried(run.events, 'CopyEncryptImage')).toBe(1);
    expect(retried(run.events, 'CreateKmsGrant')).toBe(1);
    expect(retried(run.events, 'ShareSource')).toBe(1);
  });

  it('records a failed copy, finishes the other targets, unshares the source and fails the execution', async () => {
    aws.failingCopies.add(`${ACCOUNT_B}/us-east-1`);
    const run = await runDefinition(input(), pipelineHandlers(), { executionName: 'partial' });
    expect(run.error?.name).toBe('RunFailedError');
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('PARTIAL');
    const failed = manifest.results.filter((r) => r.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ accountId: ACCOUNT_B, region: 'us-east-1' });
    expect(failed[0]?.error?.name).toBe('ImageCopyFailedError');
    expect(failed[0]?.error?.message).toContain('Client.InvalidKMSKey.InvalidState');
    // The failed copy is accounted for: named in the manifest and deregistered.
    expect(aws.images.get(failed[0]?.imageId ?? '')?.state).toBe('deregistered');
    expect(manifest.results.filter((r) => r.status === 'succeeded')).toHaveLength(3);
    expect(manifest.sourceShare?.revoked).toBe(true);
    expect(aws.images.get(sourceImage)?.launchPermission.size).toBe(0);
    expect(leftRunning()).toEqual([]);
  });

  it('explains a launch ending in Client.InternalError and cleans up the group and instance', async () => {
    aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client.InternalError: Client error on launch');
    const run = await runDefinition(input({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }), pipelineHandlers());
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('FAILED');
    const [result] = manifest.results;
    expect(result?.error?.name).toBe('LaunchFailedError');
    expect(result?.error?.message).toContain('Client.InternalError');
    expect(result?.error?.message).toContain('AWSServiceRoleForAutoScaling');
    expect(result?.imageId).toMatch(/^ami-/);
    expect(entered(run.events, 'CleanUpFailedTarget')).toBe(1);
    expect(aws.groups.size).toBe(0);
    expect(aws.templates.size).toBe(0);
    expect(leftRunning()).toEqual([]);
  });

  it("keeps in a failed target's line what it made before AWS went away: its copy, the copy's key and the grant", async () => {
    // The target account's endpoint goes away once its launch check started: every later call fails to connect.
    let gone = false;
    aws.hooks.afterCall = (call) => {
      if (call.command === 'CreateAutoScalingGroup') gone = true;
    };
    aws.hooks.beforeCall = (call) => {
      if (gone && call.account === ACCOUNT_A) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5000'), { code: 'ECONNREFUSED' });
    };
    const run = await runDefinition(input({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }), pipelineHandlers());
    const [result] = manifestOf(run).results;
    const copy = [...aws.images.values()].find((i) => i.account === ACCOUNT_A);
    const grant = aws.grants.find((g) => g.KeyId === keys[`${ACCOUNT_A}/eu-west-1`]);
    expect(result?.status).toBe('failed');
    expect(entered(run.events, 'NoCopyFound')).toBe(1);
    expect(result).toMatchObject({ imageId: copy?.id, kmsKeyArn: keys[`${ACCOUNT_A}/eu-west-1`], grantId: grant?.GrantId });
    expect(result?.grantId).toMatch(/^grant-/);
  });

  it("gives a failed target's cleanup error as { name, message }, not a raw cause", async () => {
    aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client.InternalError: Client error on launch');
    aws.hooks.beforeCall = (call) => {
      if (call.command === 'DeleteAutoScalingGroup') {
        throw Object.assign(new Error('User is not authorized to perform: autoscaling:DeleteAutoScalingGroup'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      }
    };
    const run = await runDefinition(input({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }), pipelineHandlers());
    const [result] = manifestOf(run).results;
    expect(result?.error?.name).toBe('LaunchFailedError');
    expect(result?.cleanup).toEqual({
      error: { name: 'AccessDeniedError', message: expect.stringContaining('autoscaling:DeleteAutoScalingGroup') as unknown },
    });
  });

  it('terminates the instance of a run-instances check that went terminated', async () => {
    aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client error on launch');
    const run = await runDefinition(
      input({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }], verify: { mode: 'run-instances' } }),
      pipelineHandlers(),
    );
    expect(manifestOf(run).results[0]?.error?.name).toBe('LaunchFailedError');
    expect(leftRunning()).toEqual([]);
  });

  it('records a target account whose role cannot be assumed and completes the others', async () => {
    aws.unassumable.add(ACCOUNT_B);
    const run = await runDefinition(input(), pipelineHandlers());
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('PARTIAL');
    const failed = manifest.results.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.accountId)).toEqual([ACCOUNT_B, ACCOUNT_B]);
    expect(failed[0]?.error?.name).toBe('TargetRoleNotAssumableError');
    expect(failed[0]?.error?.message).toContain('templates/target-account.yml');
    expect(aws.images.get(sourceImage)?.launchPermission.size).toBe(0);
  });

  it('skips the launch check in mode none and says so in the manifest', async () => {
    const run = await runDefinition(input({ verify: { mode: 'none' } }), pipelineHandlers());
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.every((r) => r.launchCheck?.state === 'skipped' && r.launchCheck?.mode === 'none')).toBe(true);
    expect(aws.callsTo('CreateAutoScalingGroup')).toHaveLength(0);
  });

  it('rejects invalid input with zero AWS calls', async () => {
    const run = await runDefinition(
      input({ targets: [{ accountId: '1234', regions: ['eu-west-1'], kmsKey: `arn:aws:kms:eu-west-1:${BUILDER}:key/11111111-1111-1111-1111-111111111111` }] }),
      pipelineHandlers(),
    );
    expect(run.error?.name).toBe('InvalidInputError');
    expect(run.error?.cause).toContain('targets[0].accountId');
    expect(aws.calls).toHaveLength(0);
  });

  it('succeeds without doing anything when an announced image is not opted in', async () => {
    const run = await runDefinition(
      { source: { imageId: sourceImage, region: 'eu-west-1', optInTag: { key: 'ami-pipeline:distribute', value: 'true' } }, targets: (input() as { targets: Json }).targets },
      pipelineHandlers(),
    );
    expect(run.error).toBeUndefined();
    expect(entered(run.events, 'SourceNotOptedIn')).toBe(1);
    expect(aws.callsTo('ModifyImageAttribute')).toHaveLength(0);
  });

  it('reads the targets of an automatic run from SSM', async () => {
    aws.parameters.set('/ami-pipeline/targets', JSON.stringify({ targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }));
    const run = await runDefinition({ source: { imageId: sourceImage, region: 'eu-west-1' }, targetsParameter: '/ami-pipeline/targets' }, pipelineHandlers());
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.map((r) => r.accountId)).toEqual([ACCOUNT_A]);
  });
});
