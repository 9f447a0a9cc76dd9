/**
 * After the copy, over moto: PublishImage (the SSM parameter in every target account and region), ApplyRetention
 * over several runs of one lineage (with a launch template protecting an old copy, and a dry run), and
 * NotifyCompletion's event on the builder account's default bus, delivered to an SQS queue by a rule.
 * The local runner runs the real definition and the functions' esbuild bundles; moto's state is read back through
 * the SDK, in the target accounts through the same STS role the pipeline assumes.
 *
 * What moto does not enforce for these features, and where it stays covered instead:
 * - SSM PutParameter with DataType aws:ec2:image: AWS answers 200 and validates afterwards that the value is an
 *   available image of the account; an invalid value is then neither created nor updated (the outcome is announced
 *   by a Parameter Store event on EventBridge). moto accepts any value at once and never validates. Here the value is a real copy, so only the name, account, region
 *   and value are proven. The DataType sent and the parameter's behaviour on an existing value are in
 *   test/unit/publish.test.ts.
 * - Launch templates with `resolve:ssm:PARAMETER` (publishing leaves them alone, since the parameter moves for them):
 *   moto neither resolves nor validates them, and none is launched here; the skip is covered by
 *   test/unit/publish.test.ts. The launch template used here holds a literal image ID, which is what ApplyRetention
 *   has to protect.
 * - DeregisterImage: on AWS a deregistered image stays describable for a while with state `deregistered`; moto
 *   removes it at once (DescribeImages by ID answers an empty list). The helpers below accept both.
 *   DeleteSnapshot: moto refuses the snapshot of a registered image (InvalidSnapshot.InUse) as AWS does, so the
 *   order deregister → delete is exercised for real; a snapshot used by another image is in test/unit.
 * - Image CreationDate (retention's "newest"): moto stamps a copy with the time of CopyImage, which orders the four
 *   runs as AWS would (they are seconds apart). The ordering itself is in test/unit/retention.test.ts.
 * - EventBridge: moto delivers PutEvents to an SQS target synchronously, exactly once, and does not check the queue
 *   policy that AWS needs (events.amazonaws.com sqs:SendMessage, set here anyway as a deployment would). AWS
 *   delivery is asynchronous, at least once and retried for up to 24 h, so a consumer must be idempotent
 *   (de-duplicate on the event id or executionName): not provable here. moto 5.2.1 also leaves the `account` field
 *   out of the event it delivers to SQS (its default input template has no "account"), so it is not asserted. The 256 KB
 *   trimming of the detail and PutEvents' per-entry refusals are in test/unit/notify.test.ts.
 */
import {
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type Image } from '@aws-sdk/client-ec2';
import {
  DeleteRuleCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parameterNameFor } from '../../functions/publish';
import { createClientFactory, sessionNameFor, type Clients } from '../../functions/shared/clients';
import { awsCode } from '../../functions/shared/errors';
import { MANAGED_BY, TAGS } from '../../functions/shared/tags';
import type { TargetResult } from '../../functions/shared/manifest-schema';
import { MOTO_BUILDER_ACCOUNT } from '../../local/moto';
import { ensureRunsBucket, runLocal, type LocalRunResult } from '../../local/runner';
import { seed } from '../../local/seed';
import { runDefinition, type Json } from '../../local/asl';
import { cli } from '../../cli/main';
import type { Io } from '../../cli/commands';
import { pipelineHandlers, RUNS_BUCKET } from '../../bench/handlers';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const REGIONS = ['eu-west-1', 'us-east-1'];
const SOURCE_REGION = 'eu-west-1';
const KEY_ALIAS = 'alias/ami-encryption';

/** What PublishImage and ApplyRetention add to a succeeded target's line of the manifest (functions/publish.ts, retention.ts). */
const publishSchema = z.object({
  parameterName: z.string().nullable(),
  parameterVersion: z.number().nullable(),
  lineage: z.string().nullable(),
  launchTemplates: z.array(z.object({ name: z.string(), version: z.number(), changed: z.boolean() })),
  protection: z.object({ imageId: z.string().nullable(), withCooldown: z.boolean(), movedFrom: z.array(z.object({ imageId: z.string(), state: z.string() })) }) });
const retentionSchema = z.object({
  lineage: z.string().nullable(),
  keep: z.number(),
  graceDays: z.number(),
  dryRun: z.boolean(),
  skipped: z.string().nullable(),
  kept: z.array(z.object({ imageId: z.string(), check: z.string(), reason: z.string() })),
  disabled: z.array(z.object({ imageId: z.string(), retireAfter: z.string(), since: z.string() })),
  retired: z.array(z.object({ imageId: z.string(), snapshotIds: z.array(z.string()), snapshotsLeft: z.array(z.object({ snapshotId: z.string(), code: z.string() })) })),
  swept: z.object({ deleted: z.array(z.string()), left: z.array(z.object({ snapshotId: z.string(), reason: z.string() })) }) });
/** RecordRetentionFailure's shape: the target succeeded, retention did not. */
const retentionFailureSchema = z.object({ failed: z.literal(true), error: z.unknown() });

function lifecycleOf(result: TargetResult | undefined) {
  const parsed = z.looseObject({ publish: publishSchema, retention: z.union([retentionSchema, retentionFailureSchema]) }).parse(result);
  if ('failed' in parsed.retention) {
    throw new Error(`ApplyRetention failed in ${result?.accountId}/${result?.region}: ${JSON.stringify(parsed.retention.error)}`);
  }
  return { publish: parsed.publish, retention: parsed.retention };
}

function inside(accountId: string): Clients {
  return createClientFactory(SOURCE_REGION).target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('inspect') });
}

function resultFor(run: LocalRunResult, accountId: string, region: string): TargetResult {
  const result = run.manifest?.results.find((r) => r.accountId === accountId && r.region === region);
  if (!result) throw new Error(`the manifest has no result for ${accountId}/${region}: ${JSON.stringify(run.manifest ?? run.error)}`);
  return result;
}

function copyOf(run: LocalRunResult, accountId: string, region: string): string {
  const imageId = resultFor(run, accountId, region).imageId;
  if (!imageId) throw new Error(`no copy in ${accountId}/${region}: ${JSON.stringify(resultFor(run, accountId, region).error)}`);
  return imageId;
}

/** The image as the account sees it in that region, or undefined (never existed there, or deregistered). */
async function imageIn(accountId: string, region: string, imageId: string): Promise<Image | undefined> {
  try {
    const out = await inside(accountId).ec2(region).send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: true }));
    return (out.Images ?? []).find((i) => i.ImageId === imageId && i.State !== 'deregistered');
  } catch (error) {
    if (awsCode(error).startsWith('InvalidAMIID')) return undefined;
    throw error;
  }
}

async function snapshotExists(accountId: string, region: string, snapshotId: string): Promise<boolean> {
  try {
    const out = await inside(accountId).ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    return (out.Snapshots ?? []).some((s) => s.SnapshotId === snapshotId);
  } catch (error) {
    if (awsCode(error) === 'InvalidSnapshot.NotFound') return false;
    throw error;
  }
}

/** This pipeline's images in the account and region (DescribeImages Owners self, managed-by tag), sorted by ID. */
async function managedImages(accountId: string, region: string): Promise<Image[]> {
  const out = await inside(accountId).ec2(region).send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] }] }),
  );
  return (out.Images ?? []).filter((i) => i.State !== 'deregistered').sort((a, b) => (a.ImageId ?? '').localeCompare(b.ImageId ?? ''));
}

const snapshotsOf = (image: Image | undefined) => (image?.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
const tagsOf = (image: Image | undefined) => Object.fromEntries((image?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

async function parameterValue(accountId: string, region: string, name: string): Promise<{ value: string | undefined; dataType: string | undefined }> {
  const out = await inside(accountId).ssm(region).send(new GetParameterCommand({ Name: name }));
  return { value: out.Parameter?.Value, dataType: out.Parameter?.DataType };
}

let executions = 0;
function executionName(label: string): string {
  executions += 1;
  return `lifecycle-${label}-${process.pid}-${executions}-${Date.now()}`;
}

describe.skipIf(!MOTO_AVAILABLE)('publishing, retention and the completion event against moto', () => {
  const suite = motoSuite({ bundles: true });

  it('points the parameter of every account and region at that target\'s own copy, and tags the copy with its lineage and check', async () => {
    const accounts = [uniqueAccount('61'), uniqueAccount('61')];
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: SOURCE_REGION,
      sourceImageName: 'ami-pipeline-lifecycle-base-1',
      targets: accounts.map((accountId) => ({ accountId, regions: REGIONS })) });
    const template = '/ami-pipeline/{sourceName}/latest';
    const run = await runLocal(
      {
        source: { imageId: sourceImageId, region: SOURCE_REGION },
        targets: accounts.map((accountId) => ({ accountId, regions: REGIONS, kmsKey: KEY_ALIAS })),
        publish: { parameterName: template },
        copy: { tags: { team: 'web', origin: '{sourceImageId}@{region}' } } },
      { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles, executionName: executionName('publish') },
    );
    expect(run.error).toBeUndefined();
    expect(run.manifest?.status).toBe('SUCCEEDED');
    expect(run.manifest?.results).toHaveLength(4);
    expect(run.manifest?.source?.name).toBe('ami-pipeline-lifecycle-base-1');
    const parameterName = parameterNameFor(template, { name: run.manifest?.source?.name ?? '', imageId: sourceImageId });
    expect(parameterName).toBe('/ami-pipeline/ami-pipeline-lifecycle-base-1/latest');

    const pairs = accounts.flatMap((accountId) => REGIONS.map((region) => ({ accountId, region })));
    const copies = new Map(pairs.map(({ accountId, region }) => [`${accountId}/${region}`, copyOf(run, accountId, region)]));
    expect(new Set(copies.values()).size).toBe(4);

    for (const { accountId, region } of pairs) {
      const imageId = copies.get(`${accountId}/${region}`) ?? '';
      const { publish, retention } = lifecycleOf(resultFor(run, accountId, region));
      expect(publish).toMatchObject({ parameterName, lineage: parameterName, launchTemplates: [], protection: { imageId, withCooldown: false, movedFrom: [] } });
      expect(publish.parameterVersion).toBeGreaterThanOrEqual(1);
      // One copy in the lineage: kept as the new copy, nothing retired (keep defaults to 3, graceDays to 7).
      expect(retention).toEqual({
        lineage: parameterName,
        keep: 3,
        graceDays: 7,
        dryRun: false,
        skipped: null,
        kept: [{ imageId, check: 'new-copy', reason: 'the new copy' }],
        disabled: [],
        retired: [],
        swept: { deleted: [], left: [] } });

      expect(await parameterValue(accountId, region, parameterName)).toEqual({ value: imageId, dataType: 'aws:ec2:image' });
      const image = await imageIn(accountId, region, imageId);
      expect(image?.OwnerId).toBe(accountId);
      expect(tagsOf(image)).toMatchObject({ [TAGS.lineage]: parameterName, [TAGS.verified]: 'auto-scaling', [TAGS.managedBy]: MANAGED_BY });
      // The user's tags, placeholders expanded, came with CopyImage's TagSpecifications (GetImageState re-tags only
      // the pipeline's own keys), on the image and its snapshots.
      const userTags = { team: 'web', origin: `${sourceImageId}@${region}` };
      expect(tagsOf(image)).toMatchObject(userTags);
      // Ancestry, deprecation (copy.deprecateAfterDays 365) and protection of the published copy, as EC2 reports them.
      expect(image).toMatchObject({ SourceImageId: sourceImageId, SourceImageRegion: SOURCE_REGION, DeregistrationProtection: 'enabled' });
      const deprecation = Date.parse(image?.DeprecationTime ?? '') - Date.parse(image?.CreationDate ?? '');
      expect(Math.round(deprecation / 86_400_000)).toBe(365);
      // The copy's snapshots carry the same tags (publishImage tags image and snapshots in one call).
      const snapshotIds = snapshotsOf(image);
      expect(snapshotIds.length).toBeGreaterThan(0);
      const snapshots = await inside(accountId).ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }));
      for (const snapshot of snapshots.Snapshots ?? []) {
        expect(snapshot.Tags).toEqual(
          expect.arrayContaining([
            { Key: TAGS.lineage, Value: parameterName },
            { Key: TAGS.verified, Value: 'auto-scaling' },
            { Key: 'team', Value: 'web' },
            { Key: 'origin', Value: `${sourceImageId}@${region}` },
          ]),
        );
      }

      // Only this account and region holds that copy: the others' parameters and images are their own.
      for (const other of pairs.filter((p) => p.accountId !== accountId || p.region !== region)) {
        expect(await imageIn(other.accountId, other.region, imageId), `${imageId} of ${accountId}/${region} seen in ${other.accountId}/${other.region}`).toBeUndefined();
        expect((await parameterValue(other.accountId, other.region, parameterName)).value).not.toBe(imageId);
      }
    }
  }, 180_000);

  it('keeps the newest two copies of a lineage over four runs (grace 0), and the one a launch template uses; protection follows the published copy; a dry run changes nothing', async () => {
    const accountId = uniqueAccount('61');
    const region = SOURCE_REGION;
    const parameterName = '/ami-pipeline/lineage-test/latest';
    const sources: string[] = [];
    for (const n of [2, 3, 4, 5]) {
      const seeded = await seed({
        endpointUrl: suite.moto.endpoint,
        sourceRegion: SOURCE_REGION,
        sourceImageName: `ami-pipeline-lifecycle-base-${n}`,
        targets: [{ accountId, regions: [region] }] });
      sources.push(seeded.sourceImageId);
    }
    expect(new Set(sources).size).toBe(4);
    const input = (sourceImageId: string, retention: { keep: number; dryRun?: boolean }) => ({
      source: { imageId: sourceImageId, region: SOURCE_REGION },
      targets: [{ accountId, regions: [region], kmsKey: KEY_ALIAS }],
      publish: { parameterName },
      retention: { ...retention, graceDays: 0 } });
    const templateName = `lifecycle-protect-${accountId}`;
    let templateId = '';

    const runs: LocalRunResult[] = [];
    const made: string[] = [];
    const snapshotsByCopy = new Map<string, string[]>();
    try {
      for (const [i, sourceImageId] of sources.entries()) {
        if (i === 2) {
          // Before the third run: a launch template of the account whose default version uses the FIRST copy.
          const created = await inside(accountId).ec2(region).send(
            new CreateLaunchTemplateCommand({
              LaunchTemplateName: templateName,
              LaunchTemplateData: { ImageId: made[0], InstanceType: 't3.micro' } }),
          );
          expect(created.LaunchTemplate?.DefaultVersionNumber).toBe(1);
          templateId = created.LaunchTemplate?.LaunchTemplateId ?? '';
        }
        const run = await runLocal(input(sourceImageId, { keep: 2 }), {
          endpointUrl: suite.moto.endpoint,
          region: SOURCE_REGION,
          bundles: suite.bundles,
          executionName: executionName(`retention-${i + 1}`) });
        expect(run.error, `run ${i + 1}`).toBeUndefined();
        expect(run.manifest?.status, `run ${i + 1}`).toBe('SUCCEEDED');
        const imageId = copyOf(run, accountId, region);
        expect(made).not.toContain(imageId);
        made.push(imageId);
        snapshotsByCopy.set(imageId, snapshotsOf(await imageIn(accountId, region, imageId)));
        runs.push(run);
      }
      const [first, second, third, fourth] = made as [string, string, string, string];

      // Run 2: the first copy is the other of the newest two. Run 3: the second is, and the first is protected.
      expect(lifecycleOf(resultFor(runs[1] as LocalRunResult, accountId, region)).retention.kept).toEqual([
        { imageId: second, check: 'new-copy', reason: 'the new copy' },
        { imageId: first, check: 'newest', reason: 'one of the newest 2 verified copies' },
      ]);
      // Each publish moved the deregistration protection from the copy before.
      expect(lifecycleOf(resultFor(runs[1] as LocalRunResult, accountId, region)).publish.protection).toEqual({
        imageId: second,
        withCooldown: false,
        movedFrom: [{ imageId: first, state: 'disabled' }] });
      const afterThird = lifecycleOf(resultFor(runs[2] as LocalRunResult, accountId, region)).retention;
      const byTemplate = { imageId: first, check: 'image-references', reason: `referenced by ec2:LaunchTemplate arn:aws:ec2:${region}:${accountId}:launch-template/${templateId}` };
      expect(afterThird.kept).toEqual([
        { imageId: third, check: 'new-copy', reason: 'the new copy' },
        { imageId: second, check: 'newest', reason: 'one of the newest 2 verified copies' },
        byTemplate,
      ]);
      expect(afterThird.retired).toEqual([]);

      // Run 4: the second copy is neither among the newest two nor in use: deregistered with its snapshots in one call.
      const last = lifecycleOf(resultFor(runs[3] as LocalRunResult, accountId, region));
      expect(last.publish).toMatchObject({ parameterName, lineage: parameterName });
      expect(last.retention).toEqual({
        lineage: parameterName,
        keep: 2,
        graceDays: 0,
        dryRun: false,
        skipped: null,
        kept: [
          { imageId: fourth, check: 'new-copy', reason: 'the new copy' },
          { imageId: third, check: 'newest', reason: 'one of the newest 2 verified copies' },
          byTemplate,
        ],
        disabled: [],
        retired: [{ imageId: second, snapshotIds: snapshotsByCopy.get(second), snapshotsLeft: [] }],
        swept: { deleted: [], left: [] } });
      // Only the published copy is protected.
      expect((await imageIn(accountId, region, fourth))?.DeregistrationProtection).toBe('enabled');
      for (const other of [first, third]) expect((await imageIn(accountId, region, other))?.DeregistrationProtection).toBe('disabled');
      expect(snapshotsByCopy.get(second)?.length).toBeGreaterThan(0);

      expect((await managedImages(accountId, region)).map((i) => i.ImageId)).toEqual([first, third, fourth].sort());
      expect(await imageIn(accountId, region, second)).toBeUndefined();
      for (const snapshotId of snapshotsByCopy.get(second) ?? []) expect(await snapshotExists(accountId, region, snapshotId)).toBe(false);
      for (const kept of [first, third, fourth]) {
        for (const snapshotId of snapshotsByCopy.get(kept) ?? []) expect(await snapshotExists(accountId, region, snapshotId)).toBe(true);
      }
      expect((await parameterValue(accountId, region, parameterName)).value).toBe(fourth);

      // A fifth run of the fourth source with dryRun: the copy is reused and nothing changes. With keep 2 nothing
      // would be retired (third is among the newest two, first is protected), so keep 1 gives the dry run something
      // to report: the third copy, which a real run would retire.
      const parameterVersion = last.publish.parameterVersion;
      const dry = await runLocal(input(sources[3] ?? '', { keep: 1, dryRun: true }), {
        endpointUrl: suite.moto.endpoint,
        region: SOURCE_REGION,
        bundles: suite.bundles,
        executionName: executionName('retention-dry-run') });
      expect(dry.error).toBeUndefined();
      expect(dry.manifest?.status).toBe('SUCCEEDED');
      expect(copyOf(dry, accountId, region)).toBe(fourth);
      const dryLifecycle = lifecycleOf(resultFor(dry, accountId, region));
      expect(dryLifecycle.publish.parameterVersion).toBe(parameterVersion);
      expect(dryLifecycle.retention).toEqual({
        lineage: parameterName,
        keep: 1,
        graceDays: 0,
        dryRun: true,
        skipped: null,
        kept: [{ imageId: fourth, check: 'new-copy', reason: 'the new copy' }, byTemplate],
        disabled: [],
        retired: [{ imageId: third, snapshotIds: snapshotsByCopy.get(third), snapshotsLeft: [] }],
        swept: { deleted: [], left: [] } });
      expect((await managedImages(accountId, region)).map((i) => i.ImageId)).toEqual([first, third, fourth].sort());
      for (const kept of [first, third, fourth]) {
        for (const snapshotId of snapshotsByCopy.get(kept) ?? []) expect(await snapshotExists(accountId, region, snapshotId)).toBe(true);
      }
      expect(await parameterValue(accountId, region, parameterName)).toEqual({ value: fourth, dataType: 'aws:ec2:image' });
    } finally {
      await inside(accountId)
        .ec2(region)
        .send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: templateName }))
        .catch(() => undefined);
    }
  }, 300_000);

  it('disables a leaving copy for its grace period, deregisters it on a run past it, and restores a disabled one with the CLI', async () => {
    const accountId = uniqueAccount('61');
    const region = SOURCE_REGION;
    const parameterName = '/ami-pipeline/grace-test/latest';
    const sources: string[] = [];
    for (const n of [2, 3, 4]) {
      const seeded = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: SOURCE_REGION, sourceImageName: `ami-pipeline-lifecycle-base-${n}`, targets: [{ accountId, regions: [region] }] });
      sources.push(seeded.sourceImageId);
    }
    const input = (sourceImageId: string) => ({
      source: { imageId: sourceImageId, region: SOURCE_REGION },
      targets: [{ accountId, regions: [region], kmsKey: KEY_ALIAS }],
      publish: { parameterName },
      retention: { keep: 1, graceDays: 3 } });
    const run = async (sourceImageId: string, label: string) => {
      const result = await runLocal(input(sourceImageId), { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles, executionName: executionName(label) });
      expect(result.error, label).toBeUndefined();
      return result;
    };
    const first = copyOf(await run(sources[0] ?? '', 'grace-1'), accountId, region);
    const secondRun = await run(sources[1] ?? '', 'grace-2');
    const second = copyOf(secondRun, accountId, region);

    // The first copy left the kept set: disabled, tagged with the end of its grace period, snapshots kept.
    const graced = lifecycleOf(resultFor(secondRun, accountId, region)).retention;
    expect(graced.disabled).toEqual([{ imageId: first, retireAfter: expect.any(String) as string, since: 'this run' }]);
    const retireAfter = Date.parse(graced.disabled[0]?.retireAfter ?? '');
    const firstImage = await imageIn(accountId, region, first);
    expect(firstImage?.State).toBe('disabled');
    expect(tagsOf(firstImage)[TAGS.retireAfter]).toBe(graced.disabled[0]?.retireAfter);
    const firstSnapshots = snapshotsOf(firstImage);
    for (const snapshotId of firstSnapshots) expect(await snapshotExists(accountId, region, snapshotId)).toBe(true);

    // A run of the same source past the grace period (the functions' clock moved 4 days on): deregistered with its snapshots.
    const later = new Date(retireAfter + 86_400_000);
    // The functions in this process write to the test's runs bucket (the deployment's RunsBucket).
    await ensureRunsBucket(RUNS_BUCKET, SOURCE_REGION);
    const moved = await runDefinition(input(sources[1] ?? '') as Json, pipelineHandlers(() => later), { executionName: executionName('grace-later') });
    expect(moved.error).toBeUndefined();
    const afterGrace = lifecycleOf((moved.manifest as unknown as { results: TargetResult[] }).results.find((r) => r.accountId === accountId)).retention;
    expect(afterGrace.retired).toEqual([{ imageId: first, snapshotIds: firstSnapshots, snapshotsLeft: [] }]);
    expect(await imageIn(accountId, region, first)).toBeUndefined();
    for (const snapshotId of firstSnapshots) expect(await snapshotExists(accountId, region, snapshotId)).toBe(false);

    // A third source: the second copy is disabled in its turn; `ami-pipeline restore` brings it back.
    const third = copyOf(await run(sources[2] ?? '', 'grace-3'), accountId, region);
    expect((await imageIn(accountId, region, second))?.State).toBe('disabled');
    expect((await parameterValue(accountId, region, parameterName)).value).toBe(third);
    const dir = mkdtempSync(join(tmpdir(), 'ami-pipeline-restore-'));
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify(input(sources[2] ?? '')));
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } } as unknown as Io;
    const code = await cli(['restore', '--input', file, '--account', accountId, '--region', region, '--image', second, '--output', 'json', '--endpoint-url', suite.moto.endpoint], io);
    expect(code, out.join('')).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual({
      imageId: second,
      was: 'disabled',
      parameter: { name: parameterName, previous: third, version: expect.any(Number) as number },
      protection: { imageId: second, movedFrom: third } });
    const restored = await imageIn(accountId, region, second);
    expect(restored?.State).toBe('available');
    expect(restored?.DeregistrationProtection).toBe('enabled');
    expect(tagsOf(restored)[TAGS.retireAfter]).toBeUndefined();
    expect((await parameterValue(accountId, region, parameterName)).value).toBe(second);
    expect((await imageIn(accountId, region, third))?.DeregistrationProtection).toBe('disabled');
  }, 300_000);

  it('puts the manifest on the builder account\'s default bus, where a rule delivers it to a queue', async () => {
    // The builder account: the default credentials, moto's account 123456789012; NotifyCompletion sends to the
    // default bus of the pipeline's region (runLocal's region).
    const accountId = uniqueAccount('61');
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: SOURCE_REGION,
      sourceImageName: 'ami-pipeline-lifecycle-base-1',
      targets: [{ accountId, regions: [SOURCE_REGION] }] });
    const sqs = new SQSClient({ region: SOURCE_REGION });
    const events = new EventBridgeClient({ region: SOURCE_REGION });
    const name = `ami-pipeline-lifecycle-${process.pid}-${Date.now()}`;
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl ?? '';
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn ?? '';
    expect(queueArn).toBe(`arn:aws:sqs:${SOURCE_REGION}:${MOTO_BUILDER_ACCOUNT}:${name}`);
    try {
      const ruleArn = (
        await events.send(
          new PutRuleCommand({ Name: name, EventBusName: 'default', EventPattern: JSON.stringify({ source: ['encrypted-ami-pipeline'] }), State: 'ENABLED' }),
        )
      ).RuleArn;
      // What AWS needs for delivery (moto does not check it).
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: queueUrl,
          Attributes: {
            Policy: JSON.stringify({
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { Service: 'events.amazonaws.com' },
                  Action: 'sqs:SendMessage',
                  Resource: queueArn,
                  Condition: { ArnEquals: { 'aws:SourceArn': ruleArn } } },
              ] }) } }),
      );
      const targets = await events.send(new PutTargetsCommand({ Rule: name, EventBusName: 'default', Targets: [{ Id: 'queue', Arn: queueArn }] }));
      expect(targets.FailedEntryCount ?? 0).toBe(0);

      const run = await runLocal(
        {
          source: { imageId: sourceImageId, region: SOURCE_REGION },
          targets: [{ accountId, regions: [SOURCE_REGION], kmsKey: KEY_ALIAS }] },
        { endpointUrl: suite.moto.endpoint, region: SOURCE_REGION, bundles: suite.bundles, executionName: executionName('notify') },
      );
      expect(run.error).toBeUndefined();
      expect(run.manifest?.status).toBe('SUCCEEDED');

      // Under a shared moto (MOTO_ENDPOINT) other files' runs reach the same bus: take this execution's event.
      const eventSchema = z.looseObject({
        source: z.string(),
        'detail-type': z.string(),
        region: z.string(),
        detail: z.looseObject({ executionName: z.string() }) });
      const received: z.infer<typeof eventSchema>[] = [];
      for (let attempt = 0; attempt < 10 && !received.some((e) => e.detail.executionName === run.executionName); attempt += 1) {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        for (const message of out.Messages ?? []) received.push(eventSchema.parse(JSON.parse(message.Body ?? 'null')));
      }
      const mine = received.filter((e) => e.detail.executionName === run.executionName);
      expect(mine).toHaveLength(1);
      const event = mine[0];
      expect(event?.source).toBe('encrypted-ami-pipeline');
      expect(event?.['detail-type']).toBe('AMI Distribution Completed');
      // No `account` to check: moto 5.2.1 delivers to SQS through its default input template, which leaves it out
      // (AWS sends it: the builder account). The queue's ARN above proves which account's bus delivered.
      expect(event?.region).toBe(SOURCE_REGION);
      // The event carries the run's summary: the manifest without the full lines (those are the batches' outputs).
      const { results: _lines, ...summary } = run.manifest ?? { results: [] };
      expect(event?.detail).toEqual(summary);
    } finally {
      await events.send(new RemoveTargetsCommand({ Rule: name, EventBusName: 'default', Ids: ['queue'] })).catch(() => undefined);
      await events.send(new DeleteRuleCommand({ Name: name, EventBusName: 'default' })).catch(() => undefined);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    }
  }, 180_000);
});
