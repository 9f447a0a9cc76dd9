/**
 * After the copy: publishing only after a passed launch check, retention over several runs with its protections,
 * and the completion event. The real definition over the in-memory AWS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDefinition, type Json } from '../../local/asl';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { pipelineHandlers } from '../../bench/handlers';
import { checkEventsAndRestore, completionDetails, manifestOf } from '../support/run-output';

const REGION = 'eu-west-1';
const PARAMETER = '/ami-pipeline/base/latest';
let aws: FakeAws;

function input(imageId: string, extra: Record<string, Json> = {}): Json {
  return {
    source: { imageId, region: REGION },
    targets: [ACCOUNT_A, ACCOUNT_B].map((accountId) => ({ accountId, regions: [REGION], kmsKey: 'alias/ami-encryption' })),
    publish: { parameterName: PARAMETER },
    ...extra,
  };
}

const copiesIn = (account: string) =>
  [...aws.images.values()].filter((i) => i.account === account && i.region === REGION && i.state !== 'deregistered').map((i) => i.id);

beforeEach(() => {
  aws = new FakeAws();
  for (const account of [ACCOUNT_A, ACCOUNT_B]) aws.addKey(account, REGION);
});
afterEach(() => checkEventsAndRestore(aws));

describe('publishing', () => {
  it('points each target account and region parameter at its own verified copy, and moves launch templates to it', async () => {
    const source = aws.addSourceImage(REGION);
    aws.addUserTemplate(ACCOUNT_A, REGION, 'web-servers', 'ami-00000000000000old');
    const run = await runDefinition(input(source, { publish: { parameterName: PARAMETER, launchTemplates: ['web-servers'] }, verify: { mode: 'none' } }), pipelineHandlers(), {
      executionName: 'publish',
    });
    expect(run.error?.name).toBe('RunFailedError');
    const manifest = manifestOf(run);
    const failed = manifest.results.find((r) => r.status === 'failed');
    // Account B has no launch template of that name: its target fails after a good copy, and says why.
    expect(failed?.accountId).toBe(ACCOUNT_B);
    expect(failed?.error?.name).toBe('PublishFailedError');
    expect(failed?.error?.message).toContain('web-servers');
    const a = manifest.results.find((r) => r.accountId === ACCOUNT_A);
    expect(aws.targetParameters.get(`${ACCOUNT_A}/${REGION}/${PARAMETER}`)).toMatchObject({ value: a?.imageId, dataType: 'aws:ec2:image' });
    const template = aws.userTemplates.get(`${ACCOUNT_A}/${REGION}/web-servers`);
    expect(template?.versions[(template?.defaultVersion ?? 0) - 1]?.imageId).toBe(a?.imageId);
  });

  it('publishes and retires nothing when the launch check fails', async () => {
    const first = await runDefinition(input(aws.addSourceImage(REGION), { retention: { keep: 1, graceDays: 0 } }), pipelineHandlers(), { executionName: 'first' });
    expect(manifestOf(first).status).toBe('SUCCEEDED');
    const published = aws.targetParameters.get(`${ACCOUNT_A}/${REGION}/${PARAMETER}`)?.value;
    aws.failingLaunches.set(`${ACCOUNT_A}/${REGION}`, 'Client.InternalError: Client error on launch');
    const before = aws.calls.length;
    const run = await runDefinition(input(aws.addSourceImage(REGION), { retention: { keep: 1, graceDays: 0 } }), pipelineHandlers(), { executionName: 'second' });
    const manifest = manifestOf(run);
    expect(manifest.results.find((r) => r.accountId === ACCOUNT_A)?.error?.name).toBe('LaunchFailedError');
    const inA = aws.calls.slice(before).filter((c) => c.account === ACCOUNT_A);
    expect(inA.filter((c) => ['PutParameter', 'CreateLaunchTemplateVersion', 'DeregisterImage', 'DeleteSnapshot'].includes(c.command))).toEqual([]);
    expect(aws.targetParameters.get(`${ACCOUNT_A}/${REGION}/${PARAMETER}`)?.value).toBe(published);
    // Account B's run went on: published and retired its older copy.
    expect(manifest.results.find((r) => r.accountId === ACCOUNT_B)?.status).toBe('succeeded');
    expect(copiesIn(ACCOUNT_B)).toHaveLength(1);
  });
});

describe('retention', () => {
  it('keeps exactly the newest verified copies across four runs, and each protected one', async () => {
    const made: string[][] = [];
    for (let i = 0; i < 4; i += 1) {
      const run = await runDefinition(input(aws.addSourceImage(REGION), { retention: { keep: 2, graceDays: 0 } }), pipelineHandlers(), { executionName: `run-${i}` });
      expect(manifestOf(run).status).toBe('SUCCEEDED');
      made.push(manifestOf(run).results.map((r) => r.imageId ?? ''));
      if (i === 0) {
        // Protect account B's first copy: a launch template's default version still uses it.
        aws.addUserTemplate(ACCOUNT_B, REGION, 'legacy', made[0]?.[1] ?? '');
      }
    }
    const [a0, a1, a2, a3] = made.map((m) => m[0] ?? '');
    const [b0, b1, b2, b3] = made.map((m) => m[1] ?? '');
    expect(copiesIn(ACCOUNT_A).sort()).toEqual([a2, a3].sort());
    expect(aws.images.get(a0 ?? '')?.state).toBe('deregistered');
    expect(aws.images.get(a1 ?? '')?.state).toBe('deregistered');
    expect(aws.deletedSnapshots).toEqual(expect.arrayContaining([aws.images.get(a0 ?? '')?.snapshotId, aws.images.get(a1 ?? '')?.snapshotId]));
    expect(copiesIn(ACCOUNT_B).sort()).toEqual([b0, b2, b3].sort());
    expect(aws.images.get(b1 ?? '')?.state).toBe('deregistered');
    const last = manifestOf(await runDefinition(input(aws.addSourceImage(REGION), { retention: { keep: 2, graceDays: 0, dryRun: true } }), pipelineHandlers(), { executionName: 'dry' }));
    const retentionB = (last.results.find((r) => r.accountId === ACCOUNT_B) as unknown as { retention: { kept: { imageId: string; check: string; reason: string }[]; retired: { imageId: string }[] } }).retention;
    expect(retentionB.kept.find((k) => k.imageId === b0)).toMatchObject({ check: 'image-references', reason: expect.stringContaining('referenced by ec2:LaunchTemplate') });
    expect(retentionB.retired.map((r) => r.imageId)).toContain(b2);
    expect(aws.images.get(b2 ?? '')?.state).toBe('available');
  });

  it('never touches an image the pipeline did not make', async () => {
    const foreign = aws.addSourceImage(REGION, 'hand-made');
    const image = aws.images.get(foreign);
    if (image) {
      image.account = ACCOUNT_A;
      image.tags = [{ Key: 'ami-pipeline:lineage', Value: PARAMETER }];
    }
    for (let i = 0; i < 2; i += 1) await runDefinition(input(aws.addSourceImage(REGION), { retention: { keep: 1, graceDays: 0 } }), pipelineHandlers(), { executionName: `f-${i}` });
    expect(aws.images.get(foreign)?.state).toBe('available');
  });
});

describe('the completion event', () => {
  it('is emitted on the default bus with the manifest, and the summary goes to the topic', async () => {
    const topicArn = 'arn:aws:sns:eu-west-1:999999999999:ami-pipeline';
    aws.failingCopies.add(`${ACCOUNT_B}/${REGION}`);
    const run = await runDefinition(input(aws.addSourceImage(REGION), { notify: { topicArn } }), pipelineHandlers(), { executionName: 'events' });
    expect(aws.events).toHaveLength(1);
    expect(aws.events[0]).toMatchObject({ Source: 'encrypted-ami-pipeline', DetailType: 'AMI Distribution Failed' });
    // The event carries the run's summary: the manifest without the full lines (those are in S3).
    const { results: _lines, ...summary } = manifestOf(run);
    expect(completionDetails(aws.events)).toEqual([summary]);
    expect(aws.notifications).toHaveLength(1);
    expect(aws.notifications[0]?.TopicArn).toBe(topicArn);
    expect(aws.notifications[0]?.Message).toContain(ACCOUNT_B);
  });

  it('says Completed when every target succeeded', async () => {
    await runDefinition(input(aws.addSourceImage(REGION)), pipelineHandlers());
    expect(aws.events.map((e) => e.DetailType)).toEqual(['AMI Distribution Completed']);
  });
});
