/**
 * The whole pipeline through the local runner (the real definition, the functions' esbuild bundles) against moto
 * over HTTP, multi-account through STS, then moto's state is read back through the SDK.
 *
 * What moto does not enforce, and where it stays covered instead (see ../shared TOOLCHAIN notes):
 * - CopyImage ignores Encrypted/KmsKeyId and never fails asynchronously: the copy's `failed` state and its
 *   StateReason are covered by test/unit/copy-encrypt.test.ts and test/statemachine/pipeline.test.ts.
 * - Sharing is stored but does not make the builder's image visible to other accounts: the base images of
 *   local/moto-amis.json are preloaded in every account, which is what lets CopyImage run in the targets.
 * - Key policies, the AWS managed key's restrictions and grant propagation are not enforced: test/unit covers them
 *   with recorded AWS errors (SourceNotShareableError, SourceKeyNotSharedError, GrantNotYetPropagatedError).
 * - Launches never fail on the key; volumes are encrypted only because the launch maps the root device with the
 *   target key (which the pipeline always does): Client.InternalError paths are in test/statemachine.
 */
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSnapshotAttributeCommand,
  EC2Client } from '@aws-sdk/client-ec2';
import { ListGrantsCommand } from '@aws-sdk/client-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClientFactory, sessionNameFor, type Clients } from '../../functions/shared/clients';
import { runLocal } from '../../local/runner';
import { seed } from '../../local/seed';
import { startFaultProxy } from '../support/fault-proxy';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const REGIONS = ['eu-west-1', 'us-east-1'];
const SOURCE_REGION = 'eu-west-1';

function inside(accountId: string): Clients {
  return createClientFactory(SOURCE_REGION).target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('inspect') });
}

function input(sourceImageId: string, accounts: string[]) {
  return {
    source: { imageId: sourceImageId, region: SOURCE_REGION },
    targets: accounts.map((accountId) => ({ accountId, regions: REGIONS, kmsKey: 'alias/ami-encryption' })) };
}

async function copiesOf(sourceImageId: string, accountId: string, region: string) {
  const out = await inside(accountId).ec2(region).send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:ami-pipeline:source-image', Values: [sourceImageId] }] }),
  );
  return (out.Images ?? []).filter((i) => i.State !== 'deregistered');
}

async function leftovers(accountId: string, region: string) {
  const clients = inside(accountId);
  const instances = await clients.ec2(region).send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }),
  );
  const groups = await clients.autoScaling(region).send(new DescribeAutoScalingGroupsCommand({}));
  const templates = await clients.ec2(region).send(new DescribeLaunchTemplatesCommand({}));
  return {
    instances: (instances.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId),
    groups: (groups.AutoScalingGroups ?? []).map((g) => g.AutoScalingGroupName),
    templates: (templates.LaunchTemplates ?? []).map((t) => t.LaunchTemplateName).filter((n) => n?.startsWith('ami-pipeline-verify-')) };
}

async function sourcePermissions(imageId: string) {
  const ec2 = new EC2Client({ region: SOURCE_REGION });
  const launch = await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }));
  const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  const snapshotId = image?.BlockDeviceMappings?.find((m) => m.Ebs?.SnapshotId)?.Ebs?.SnapshotId ?? '';
  const volume = await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }));
  return {
    launch: (launch.LaunchPermissions ?? []).map((p) => p.UserId).sort(),
    volume: (volume.CreateVolumePermissions ?? []).map((p) => p.UserId).sort() };
}

describe.skipIf(!MOTO_AVAILABLE)('the pipeline against moto', () => {
  const suite = motoSuite({ bundles: true });

  describe('two target accounts × two regions', () => {
    const accounts = [uniqueAccount('21'), uniqueAccount('21')];
    let sourceImageId: string;
    let keys: Record<string, string>;
    let firstImages: (string | null)[];

    beforeAll(async () => {
      ({ sourceImageId, keys } = await seed({
        endpointUrl: suite.moto.endpoint,
        sourceRegion: SOURCE_REGION,
        sourceImageName: 'ami-pipeline-integration-base',
        targets: accounts.map((accountId) => ({ accountId, regions: REGIONS })) }));
    }, 60_000);

    it('copies into each account and region with its own key, grants Auto Scaling, leaves nothing running and unshares', async () => {
      const before = await sourcePermissions(sourceImageId);
      const run = await runLocal(input(sourceImageId, accounts), { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles });
      expect(run.error).toBeUndefined();
      expect(run.manifest?.status).toBe('SUCCEEDED');
      expect(run.manifest?.results).toHaveLength(4);
      for (const accountId of accounts) {
        for (const region of REGIONS) {
          const result = run.manifest?.results.find((r) => r.accountId === accountId && r.region === region);
          expect(result?.status).toBe('succeeded');
          expect(result?.kmsKeyArn).toBe(keys[`${accountId}/${region}`]);
          expect(result?.launchCheck?.state).toBe('verified');
          const copies = await copiesOf(sourceImageId, accountId, region);
          expect(copies.map((c) => c.ImageId)).toEqual([result?.imageId]);
          expect(copies[0]?.OwnerId).toBe(accountId);
          expect(copies[0]?.Tags).toEqual(expect.arrayContaining([{ Key: 'ami-pipeline:kms-key', Value: keys[`${accountId}/${region}`] }]));
          const grants = await inside(accountId).kms(region).send(new ListGrantsCommand({ KeyId: keys[`${accountId}/${region}`] }));
          const asg = `arn:aws:iam::${accountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
          expect((grants.Grants ?? []).filter((g) => g.GranteePrincipal === asg)).toHaveLength(1);
          expect(await leftovers(accountId, region)).toEqual({ instances: [], groups: [], templates: [] });
        }
      }
      expect(await sourcePermissions(sourceImageId)).toEqual(before);
      firstImages = run.manifest?.results.map((r) => r.imageId) ?? [];
    }, 120_000);

    it('runs again without new images, grants or instances, and points at the same copies', async () => {
      const run = await runLocal(input(sourceImageId, accounts), { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles });
      expect(run.manifest?.status).toBe('SUCCEEDED');
      expect(run.manifest?.results.map((r) => r.imageId)).toEqual(firstImages);
      for (const accountId of accounts) {
        for (const region of REGIONS) {
          expect(await copiesOf(sourceImageId, accountId, region)).toHaveLength(1);
          const grants = await inside(accountId).kms(region).send(new ListGrantsCommand({ KeyId: keys[`${accountId}/${region}`] }));
          expect(grants.Grants ?? []).toHaveLength(1);
          expect((await leftovers(accountId, region)).instances).toEqual([]);
        }
      }
    }, 120_000);
  });

  it('runs of the same input started together make one copy per target and leave the share to the run still going', async () => {
    const account = uniqueAccount('23');
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: SOURCE_REGION,
      sourceImageName: 'ami-pipeline-together-base',
      targets: [{ accountId: account, regions: REGIONS }],
    });
    const before = await sourcePermissions(sourceImageId);
    const [fast, slow] = [`together-fast-${Date.now()}`, `together-slow-${Date.now()}`];
    const start = (executionName: string, waitMs: number) =>
      runLocal(input(sourceImageId, [account]), { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles, executionName, waitMs });
    // Started together; the second's Wait states last 2 s, so it is still copying or verifying when the first ends.
    const slowRun = start(slow, 2_000);
    const first = await start(fast, 0);
    const whileSlowRuns = await sourcePermissions(sourceImageId);
    const last = await slowRun;
    for (const run of [first, last]) {
      expect(run.error).toBeUndefined();
      expect(run.manifest?.status).toBe('SUCCEEDED');
      expect(run.manifest?.sourceShare?.revoked).toBe(true);
      expect(run.manifest?.results.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    }
    for (const region of REGIONS) {
      // One copy per target, and both runs report it.
      const copies = await copiesOf(sourceImageId, account, region);
      expect(copies).toHaveLength(1);
      for (const run of [first, last]) expect(run.manifest?.results.find((r) => r.region === region)?.imageId).toBe(copies[0]?.ImageId);
      expect(await leftovers(account, region)).toEqual({ instances: [], groups: [], templates: [] });
    }
    // The first to end left the share to the other, still running; the last one revoked it.
    expect(whileSlowRuns.launch).toContain(account);
    expect(first.manifest?.sourceShare?.left?.filter((l) => l.accountId === account).map((l) => [l.reason, l.executionName])).toContainEqual(['execution-running', slow]);
    expect(last.manifest?.sourceShare?.left ?? []).toEqual([]);
    expect(last.manifest?.sourceShare?.accountIds).toEqual([account]);
    expect(await sourcePermissions(sourceImageId)).toEqual(before);
  }, 180_000);

  it('completes every other target through throttling, a 503 burst and an account whose role cannot be assumed', async () => {
    const [good1, good2, locked] = [uniqueAccount('22'), uniqueAccount('22'), uniqueAccount('22')] as [string, string, string];
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: SOURCE_REGION,
      sourceImageName: 'ami-pipeline-faults-base',
      targets: [good1, good2].map((accountId) => ({ accountId, regions: REGIONS })) });
    const before = await sourcePermissions(sourceImageId);
    const proxy = await startFaultProxy(suite.moto.endpoint, {
      throttleEveryNthEc2Call: 3,
      burstAfterEc2Calls: 10,
      burstLength: 3,
      unassumableAccounts: [locked] });
    try {
      const run = await runLocal(input(sourceImageId, [good1, good2, locked]), { endpointUrl: proxy.endpoint, region: SOURCE_REGION, bundles: suite.bundles });
      expect(run.manifest?.status).toBe('PARTIAL');
      const failed = run.manifest?.results.filter((r) => r.status === 'failed') ?? [];
      expect(failed.map((r) => `${r.accountId}/${r.region}`).sort()).toEqual(REGIONS.map((r) => `${locked}/${r}`).sort());
      for (const r of failed) {
        expect(r.error?.name).toBe('TargetRoleNotAssumableError');
        expect(r.error?.message).toContain(`arn:aws:iam::${locked}:role/AmiPipelineTarget`);
        expect(r.imageId).toBeNull();
      }
      expect(run.manifest?.results.filter((r) => r.status === 'succeeded')).toHaveLength(4);
      expect(run.manifest?.sourceShare?.revoked).toBe(true);
      expect(proxy.counts.throttled).toBeGreaterThan(5);
      expect(proxy.counts.burst).toBe(3);
      expect(proxy.counts.deniedAssumeRole).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
    for (const accountId of [good1, good2]) {
      for (const region of REGIONS) {
        expect(await copiesOf(sourceImageId, accountId, region)).toHaveLength(1);
        expect(await leftovers(accountId, region)).toEqual({ instances: [], groups: [], templates: [] });
      }
    }
    expect(await sourcePermissions(sourceImageId)).toEqual(before);
  }, 180_000);
});
