import {
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  type DeregisterImageCommandInput,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  DisableImageCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { applyRetention, makeHandler, NO_LINEAGE, type RetentionEvent } from '../../functions/retention';
import type { TargetItem } from '../../functions/shared/plan';
import { ACCOUNT_A, awsError, fixedNow, item, rejection, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);

const LINEAGE = '/ami-pipeline/base-image/latest';
const PARAMETER = '/ami-pipeline/base-image/latest';
const NEW_COPY = 'ami-0fedcba9876543210';
const AMI = ['ami-01111111111111111', 'ami-02222222222222222', 'ami-03333333333333333', 'ami-04444444444444444', 'ami-05555555555555555'] as const;
const ROLE_SESSION = `arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/ami-pipeline-exec-1`;
const NOW = fixedNow();
const DAY = 86_400_000;

const deps = () => ({ clients: testClients(), now: fixedNow });

function event(retention: Partial<TargetItem['settings']['retention']> = {}, publish: Partial<RetentionEvent['publish']> = {}): RetentionEvent {
  return {
    item: item({}, { retention: { ...item().settings.retention, graceDays: 0, ...retention } }),
    copy: { imageId: NEW_COPY },
    publish: { parameterName: PARAMETER, lineage: LINEAGE, ...publish },
  };
}

const snap = (imageId: string, n = 1) => `snap-${imageId.slice(4, 19)}${n}0`;

/** A copy of the lineage made by the pipeline, `day` days into November 2026, verified and published unless told otherwise. */
function copy(imageId: string, day: number, extra: Partial<Image> = {}, options: { verified?: boolean; tags?: Image['Tags'] } = {}): Image {
  const created = `2026-11-${String(day).padStart(2, '0')}T10:00:00.000Z`;
  const tags = options.tags ?? [
    { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
    { Key: 'ami-pipeline:lineage', Value: LINEAGE },
    { Key: 'ami-pipeline:published-at', Value: `2026-11-${String(day).padStart(2, '0')}T10:30:00.000Z` },
    ...(options.verified === false ? [] : [{ Key: 'ami-pipeline:verified', Value: 'auto-scaling' }]),
  ];
  return {
    ImageId: imageId,
    State: 'available',
    CreationDate: created,
    DeregistrationProtection: 'disabled',
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap(imageId), VolumeSize: 16, Encrypted: true } },
      { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
    ],
    Tags: tags,
    ...extra,
  };
}

const NEW = copy(NEW_COPY, 29);
const LINEAGE_LISTING = {
  Owners: ['self'],
  IncludeDisabled: true,
  Filters: [
    { Name: 'tag:ami-pipeline:managed-by', Values: ['encrypted-ami-pipeline'] },
    { Name: 'tag:ami-pipeline:lineage', Values: [LINEAGE] },
    { Name: 'state', Values: ['available', 'disabled'] },
  ],
};

/** Images as DescribeImages lists them: in no particular order. */
function listImages(images: Image[]): void {
  ec2Mock.on(DescribeImagesCommand, LINEAGE_LISTING).resolves({ Images: [...images].reverse() });
}

const deregistered = () => ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input);
const commandNames = () => ec2Mock.calls().map((c) => c.args[0].constructor.name);

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
  ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] });
  ec2Mock.on(DescribeImageReferencesCommand).resolves({ ImageReferences: [] });
  ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  // EC2's answer to DeregisterImage with DeleteAssociatedSnapshots: one result per snapshot of the image.
  ec2Mock.on(DeregisterImageCommand).callsFake((input: DeregisterImageCommandInput) => ({
    Return: true,
    DeleteSnapshotResults: [{ SnapshotId: snap(input.ImageId ?? ''), ReturnCode: 'success' }],
  }));
  ec2Mock.on(CreateTagsCommand).resolves({});
  ec2Mock.on(DisableImageCommand).resolves({ Return: true });
  ec2Mock.on(DeleteSnapshotCommand).resolves({});
  ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Type: 'String', DataType: 'aws:ec2:image', Value: NEW_COPY } });
});

describe('applyRetention: the kept set', () => {
  it('keeps the newest three verified copies of five and deregisters the other two with their snapshots in one call each', async () => {
    listImages([NEW, copy(AMI[1], 28), copy(AMI[2], 20), copy(AMI[3], 10), copy(AMI[4], 1)]);

    const result = await applyRetention(event(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, LINEAGE_LISTING);
    expect(deregistered()).toEqual([
      { ImageId: AMI[3], DeleteAssociatedSnapshots: true },
      { ImageId: AMI[4], DeleteAssociatedSnapshots: true },
    ]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteSnapshotCommand, 0);
    expect(result).toEqual({
      lineage: LINEAGE,
      keep: 3,
      graceDays: 0,
      dryRun: false,
      skipped: null,
      kept: [
        { imageId: NEW_COPY, check: 'new-copy', reason: 'the new copy' },
        { imageId: AMI[1], check: 'newest', reason: 'one of the newest 3 verified copies' },
        { imageId: AMI[2], check: 'newest', reason: 'one of the newest 3 verified copies' },
      ],
      disabled: [],
      retired: [
        { imageId: AMI[3], snapshotIds: [snap(AMI[3])], snapshotsLeft: [] },
        { imageId: AMI[4], snapshotIds: [snap(AMI[4])], snapshotsLeft: [] },
      ],
      swept: { deleted: [], left: [] },
    });
  });

  it('does not let an unverified or a disabled copy take a place', async () => {
    listImages([NEW, copy(AMI[1], 28, {}, { verified: false }), copy(AMI[2], 27, { State: 'disabled' }), copy(AMI[3], 20), copy(AMI[4], 10)]);

    const result = await applyRetention(event(), deps());

    expect(result.kept.map((k) => k.imageId)).toEqual([NEW_COPY, AMI[3], AMI[4]]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1], AMI[2]]);
  });

  it('keeps the new copy even when keep is 1 and newer copies exist', async () => {
    listImages([copy(AMI[1], 30), NEW, copy(AMI[2], 20)]);
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.kept).toEqual([{ imageId: NEW_COPY, check: 'new-copy', reason: 'the new copy' }]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1], AMI[2]]);
  });

  it('never touches an image without the managed-by tag, even if an endpoint lists it', async () => {
    listImages([NEW, copy(AMI[1], 2, {}, { tags: [{ Key: 'ami-pipeline:lineage', Value: LINEAGE }] })]);
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.retired).toEqual([]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
  });

  it('skips without a single AWS call when there is no lineage', async () => {
    const result = await applyRetention(event({}, { parameterName: null, lineage: null }), deps());
    expect(result).toMatchObject({ lineage: null, skipped: NO_LINEAGE, kept: [], disabled: [], retired: [] });
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(ssmMock.calls()).toHaveLength(0);
  });
});

describe('applyRetention: in-use checks, each recorded', () => {
  it('keeps the image the SSM parameter points at', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Type: 'String', Value: AMI[1] } });
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.kept).toContainEqual({ imageId: AMI[1], check: 'parameter', reason: `SSM parameter ${PARAMETER}` });
    expect(result.retired).toEqual([]);
  });

  it('keeps images a launch template and an SSM parameter reference, as DescribeImageReferences names them', async () => {
    listImages([NEW, copy(AMI[1], 3), copy(AMI[2], 2), copy(AMI[3], 1)]);
    // Recorded shape of EC2's answer (API reference: ImageReference).
    ec2Mock.on(DescribeImageReferencesCommand).resolves({
      ImageReferences: [
        { ImageId: AMI[1], ResourceType: 'ec2:LaunchTemplate', Arn: `arn:aws:ec2:eu-west-1:${ACCOUNT_A}:launch-template/lt-0abcd1234ef567890` },
        { ImageId: AMI[2], ResourceType: 'ssm:Parameter', Arn: `arn:aws:ssm:eu-west-1:${ACCOUNT_A}:parameter/team/web/ami` },
      ],
    });

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImageReferencesCommand, {
      ImageIds: [AMI[1], AMI[2], AMI[3]],
      ResourceTypes: [
        { ResourceType: 'ec2:Instance', ResourceTypeOptions: [{ OptionName: 'state-name', OptionValues: ['pending', 'running', 'stopping', 'stopped'] }] },
        { ResourceType: 'ec2:LaunchTemplate' },
        { ResourceType: 'ssm:Parameter' },
        { ResourceType: 'imagebuilder:ImageRecipe' },
        { ResourceType: 'imagebuilder:ContainerRecipe' },
      ],
    });
    expect(result.kept).toContainEqual({
      imageId: AMI[1],
      check: 'image-references',
      reason: `referenced by ec2:LaunchTemplate arn:aws:ec2:eu-west-1:${ACCOUNT_A}:launch-template/lt-0abcd1234ef567890`,
    });
    expect(result.kept).toContainEqual({ imageId: AMI[2], check: 'image-references', reason: `referenced by ssm:Parameter arn:aws:ssm:eu-west-1:${ACCOUNT_A}:parameter/team/web/ami` });
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[3]]);
  });

  it('asks DescribeImageReferences about at most 10 images a call', async () => {
    const many = Array.from({ length: 12 }, (_, i) => copy(`ami-0${String(i + 10).padStart(16, '0')}`, 1 + i));
    listImages([NEW, ...many]);
    await applyRetention(event({ keep: 1, dryRun: true }), deps());
    const sizes = ec2Mock.commandCalls(DescribeImageReferencesCommand).map((c) => c.args[0].input.ImageIds?.length);
    expect(sizes).toEqual([10, 2]);
  });

  it('keeps an image the default version of a launch template uses, deeper than the versions DescribeImageReferences reads', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: 'lt-0abcd1234ef567890', LaunchTemplateName: 'web' }] });
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [{ VersionNumber: 2, DefaultVersion: true, LaunchTemplateData: { ImageId: AMI[1] } }] });
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: 'lt-0abcd1234ef567890', Versions: ['$Default'] });
    expect(result.kept).toContainEqual({ imageId: AMI[1], check: 'launch-template-default', reason: 'launch template web version 2 (its default)' });
  });

  it('keeps a copy launched 3 days ago, within keepIfLaunchedWithinDays', async () => {
    const threeDaysAgo = new Date(NOW.getTime() - 3 * DAY).toISOString();
    listImages([NEW, copy(AMI[1], 2, { LastLaunchedTime: threeDaysAgo })]);
    const result = await applyRetention(event({ keep: 1, keepIfLaunchedWithinDays: 14 }), deps());
    expect(result.kept).toContainEqual({ imageId: AMI[1], check: 'last-launched', reason: `launched ${threeDaysAgo}, within 14 days` });
    expect(result.retired).toEqual([]);
  });

  it("does not count the launch check's own launch, nor a launch older than the window, nor any launch with 0 days", async () => {
    const longAgo = new Date(NOW.getTime() - 20 * DAY).toISOString();
    const threeDaysAgo = new Date(NOW.getTime() - 3 * DAY).toISOString();
    // AMI[1] was launched only by its launch check, before it was published (its published-at tag).
    listImages([NEW, copy(AMI[1], 27, { LastLaunchedTime: '2026-11-27T10:20:00.000Z' }), copy(AMI[2], 2, { LastLaunchedTime: longAgo })]);
    const result = await applyRetention(event({ keep: 1, keepIfLaunchedWithinDays: 14 }), deps());
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1], AMI[2]]);

    ec2Mock.resetHistory();
    listImages([NEW, copy(AMI[3], 2, { LastLaunchedTime: threeDaysAgo })]);
    const off = await applyRetention(event({ keep: 1, keepIfLaunchedWithinDays: 0 }), deps());
    expect(off.retired.map((r) => r.imageId)).toEqual([AMI[3]]);
  });

  it('keeps a still-protected image, a cooldown included, and says it is retired on a later run', async () => {
    listImages([NEW, copy(AMI[1], 3, { DeregistrationProtection: 'disabled-until 2026-11-30T09:00:00.000Z' }), copy(AMI[2], 2, { DeregistrationProtection: 'enabled' })]);
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.kept).toContainEqual({
      imageId: AMI[1],
      check: 'deregistration-protection',
      reason: 'deregistration protection (disabled-until 2026-11-30T09:00:00.000Z); retired on a later run once it is lifted',
    });
    expect(result.kept.find((k) => k.imageId === AMI[2])?.check).toBe('deregistration-protection');
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
  });

  it('keeps an image whose protection was enabled meanwhile, when EC2 refuses to deregister it', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock.on(DeregisterImageCommand).rejects(awsError('OperationNotPermitted', `The image ${AMI[1]} has deregistration protection enabled.`));
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [AMI[1]] }).resolves({ Images: [copy(AMI[1], 2, { DeregistrationProtection: 'enabled' })] });
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.kept).toContainEqual({ imageId: AMI[1], check: 'deregistration-protection', reason: 'deregistration protection was enabled meanwhile; retired on a later run' });
    expect(result.retired).toEqual([]);
  });

  it('ends with the error when EC2 refuses to deregister an unprotected image', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock.on(DeregisterImageCommand).rejects(awsError('OperationNotPermitted', 'Not allowed.'));
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [AMI[1]] }).resolves({ Images: [copy(AMI[1], 2)] });
    const error = await rejection(applyRetention(event({ keep: 1 }), deps()));
    expect(error.name).toBe('AwsRequestFailedError');
  });
});

describe('applyRetention: grace period', () => {
  it('disables a copy leaving the kept set and tags when it may be deregistered, instead of deregistering it', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    const result = await applyRetention(event({ keep: 1, graceDays: 7 }), deps());
    const retireAfter = new Date(NOW.getTime() + 7 * DAY).toISOString();
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [AMI[1]], Tags: [{ Key: 'ami-pipeline:retire-after', Value: retireAfter }] });
    expect(ec2Mock).toHaveReceivedCommandWith(DisableImageCommand, { ImageId: AMI[1] });
    // Tagged before it is disabled: a copy found disabled without the tag gets a grace period from then.
    expect(commandNames().filter((n) => n === 'CreateTagsCommand' || n === 'DisableImageCommand')).toEqual(['CreateTagsCommand', 'DisableImageCommand']);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
    expect(result.disabled).toEqual([{ imageId: AMI[1], retireAfter, since: 'this run' }]);
  });

  it('deregisters a disabled copy once its grace period is over, and waits for one that is not', async () => {
    const over = copy(AMI[1], 2, { State: 'disabled' });
    over.Tags?.push({ Key: 'ami-pipeline:retire-after', Value: new Date(NOW.getTime() - 1000).toISOString() });
    const waiting = copy(AMI[2], 1, { State: 'disabled' });
    const later = new Date(NOW.getTime() + DAY).toISOString();
    waiting.Tags?.push({ Key: 'ami-pipeline:retire-after', Value: later });
    listImages([NEW, over, waiting]);

    const result = await applyRetention(event({ keep: 1, graceDays: 7 }), deps());

    expect(deregistered()).toEqual([{ ImageId: AMI[1], DeleteAssociatedSnapshots: true }]);
    expect(result.disabled).toEqual([{ imageId: AMI[2], retireAfter: later, since: 'earlier' }]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DisableImageCommand, 0);
  });
});

describe('applyRetention: snapshots', () => {
  it('reports a snapshot EC2 skipped because another image still uses it', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock.on(DeregisterImageCommand).resolves({ Return: true, DeleteSnapshotResults: [{ SnapshotId: snap(AMI[1]), ReturnCode: 'skipped' }] });
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.retired).toEqual([{ imageId: AMI[1], snapshotIds: [], snapshotsLeft: [{ snapshotId: snap(AMI[1]), code: 'skipped' }] }]);
  });

  it("sweeps the lineage's snapshots no image uses, and leaves one an image uses or EC2 calls in use", async () => {
    const orphan = 'snap-0aaaaaaaaaaaaaaa1';
    const shared = 'snap-0bbbbbbbbbbbbbbb2';
    const busy = 'snap-0ccccccccccccccc3';
    listImages([NEW]);
    ec2Mock.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: snap(NEW_COPY), State: 'completed' },
        { SnapshotId: orphan, State: 'completed' },
        { SnapshotId: shared, State: 'completed' },
        { SnapshotId: busy, State: 'completed' },
      ],
    });
    ec2Mock
      .on(DescribeImagesCommand, { Filters: [{ Name: 'block-device-mapping.snapshot-id', Values: [orphan, shared, busy] }] })
      .resolves({ Images: [{ ImageId: 'ami-0dddddddddddddddd', State: 'available', BlockDeviceMappings: [{ Ebs: { SnapshotId: shared } }] }] });
    ec2Mock.on(DeleteSnapshotCommand, { SnapshotId: busy }).rejects(awsError('InvalidSnapshot.InUse', `The snapshot ${busy} is currently in use by ami-0eeeeeeeeeeeeeeee`));

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotsCommand, {
      OwnerIds: ['self'],
      Filters: [
        { Name: 'tag:ami-pipeline:managed-by', Values: ['encrypted-ami-pipeline'] },
        { Name: 'tag:ami-pipeline:lineage', Values: [LINEAGE] },
      ],
    });
    expect(ec2Mock.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId)).toEqual([orphan, busy]);
    expect(result.swept).toEqual({
      deleted: [orphan],
      left: [
        { snapshotId: shared, reason: 'used by ami-0dddddddddddddddd' },
        { snapshotId: busy, reason: 'InvalidSnapshot.InUse' },
      ],
    });
  });
});

describe('applyRetention: dry run and errors', () => {
  it('changes nothing in a dry run but reports what would be disabled, deregistered and swept', async () => {
    const over = copy(AMI[2], 1, { State: 'disabled' });
    over.Tags?.push({ Key: 'ami-pipeline:retire-after', Value: new Date(NOW.getTime() - 1000).toISOString() });
    listImages([NEW, copy(AMI[1], 2), over]);
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', State: 'completed' }] });

    const result = await applyRetention(event({ keep: 1, graceDays: 7, dryRun: true }), deps());

    expect(commandNames().filter((n) => ['DisableImageCommand', 'CreateTagsCommand', 'DeregisterImageCommand', 'DeleteSnapshotCommand'].includes(n))).toEqual([]);
    expect(result.disabled.map((d) => d.imageId)).toEqual([AMI[1]]);
    expect(result.retired).toEqual([{ imageId: AMI[2], snapshotIds: [snap(AMI[2])], snapshotsLeft: [] }]);
    expect(result.swept.deleted).toEqual(['snap-0aaaaaaaaaaaaaaa1']);
  });

  it('throws AccessDeniedError naming the permissions when the target role may not deregister', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock
      .on(DeregisterImageCommand)
      .rejects(awsError('UnauthorizedOperation', `You are not authorized to perform this operation. User: ${ROLE_SESSION} is not authorized to perform: ec2:DeregisterImage`, 403));
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [AMI[1]] }).resolves({ Images: [copy(AMI[1], 2)] });
    const error = await rejection(applyRetention(event({ keep: 1 }), deps()));
    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('ec2:DeregisterImage');
  });

  it('counts an image another run deregistered meanwhile as retired', async () => {
    listImages([NEW, copy(AMI[1], 2)]);
    ec2Mock.on(DeregisterImageCommand).rejects(awsError('InvalidAMIID.Unavailable', `The image id '[${AMI[1]}]' is no longer available`));
    const result = await applyRetention(event({ keep: 1 }), deps());
    expect(result.retired).toEqual([{ imageId: AMI[1], snapshotIds: [], snapshotsLeft: [] }]);
  });

  it('applies retention for a well-formed payload through the handler', async () => {
    listImages([NEW]);
    const result = await makeHandler(deps())(event());
    expect(result).toMatchObject({ lineage: LINEAGE, skipped: null, kept: [{ imageId: NEW_COPY, check: 'new-copy', reason: 'the new copy' }], retired: [] });
  });
});
