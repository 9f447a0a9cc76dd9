import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  type DescribeLaunchTemplatesCommandInput,
  DescribeLaunchTemplateVersionsCommand,
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
const MANAGED_BY_FILTER = { Name: 'tag:ami-pipeline:managed-by', Values: ['encrypted-ami-pipeline'] };

const deps = () => ({ clients: testClients(), now: fixedNow });

const withRetention = (retention: Partial<TargetItem['settings']['retention']> = {}): TargetItem =>
  item({}, { retention: { lineage: null, keep: 3, dryRun: false, ...retention } });

function event(retention: Partial<TargetItem['settings']['retention']> = {}, publish: Partial<RetentionEvent['publish']> = {}): RetentionEvent {
  return {
    item: withRetention(retention),
    copy: { imageId: NEW_COPY },
    publish: { parameterName: PARAMETER, lineage: LINEAGE, ...publish },
  };
}

const snap = (imageId: string, n = 1) => `snap-${imageId.slice(4, 19)}${n}0`;

/** A copy of the lineage made by the pipeline, `day` days into November 2026, verified unless told otherwise. */
function copy(imageId: string, day: number, options: { verified?: boolean; tags?: Image['Tags'] } = {}): Image {
  const tags = options.tags ?? [
    { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
    { Key: 'ami-pipeline:lineage', Value: LINEAGE },
    ...(options.verified === false ? [] : [{ Key: 'ami-pipeline:verified', Value: 'auto-scaling' }]),
  ];
  return {
    ImageId: imageId,
    State: 'available',
    CreationDate: `2026-11-${String(day).padStart(2, '0')}T10:00:00.000Z`,
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap(imageId), VolumeSize: 16, Encrypted: true } },
      { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
    ],
    Tags: tags,
  };
}

const NEW = copy(NEW_COPY, 29);

/** Images as DescribeImages lists them: in no particular order. */
function listImages(images: Image[]): void {
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [...images].reverse() });
}

const commandNames = () => ec2Mock.calls().map((c) => c.args[0].constructor.name);

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] });
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  ec2Mock.on(DeregisterImageCommand).resolves({});
  ec2Mock.on(DeleteSnapshotCommand).resolves({});
  ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Type: 'String', DataType: 'aws:ec2:image', Value: NEW_COPY } });
});

describe('applyRetention', () => {
  it('keeps exactly the newest three verified copies of five and retires the other two with their snapshots', async () => {
    const older = copy(AMI[3], 10);
    older.BlockDeviceMappings?.push({ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snap(AMI[3], 2), VolumeSize: 50, Encrypted: true } });
    listImages([NEW, copy(AMI[1], 28), copy(AMI[2], 20), older, copy(AMI[4], 1)]);

    const result = await applyRetention(event(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ['self'],
      Filters: [MANAGED_BY_FILTER, { Name: 'tag:ami-pipeline:lineage', Values: [LINEAGE] }, { Name: 'state', Values: ['available'] }],
    });
    expect(ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input)).toEqual([{ ImageId: AMI[3] }, { ImageId: AMI[4] }]);
    expect(ec2Mock.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input)).toEqual([
      { SnapshotId: snap(AMI[3]) },
      { SnapshotId: snap(AMI[3], 2) },
      { SnapshotId: snap(AMI[4]) },
    ]);
    // A snapshot cannot be deleted while a registered image uses it.
    expect(commandNames().filter((n) => n === 'DeregisterImageCommand' || n === 'DeleteSnapshotCommand')).toEqual([
      'DeregisterImageCommand',
      'DeleteSnapshotCommand',
      'DeleteSnapshotCommand',
      'DeregisterImageCommand',
      'DeleteSnapshotCommand',
    ]);
    expect(result).toEqual({
      lineage: LINEAGE,
      keep: 3,
      dryRun: false,
      skipped: null,
      kept: [
        { imageId: NEW_COPY, reason: 'the new copy' },
        { imageId: AMI[1], reason: 'one of the newest 3 verified copies' },
        { imageId: AMI[2], reason: 'one of the newest 3 verified copies' },
      ],
      retired: [
        { imageId: AMI[3], snapshotIds: [snap(AMI[3]), snap(AMI[3], 2)] },
        { imageId: AMI[4], snapshotIds: [snap(AMI[4])] },
      ],
    });
  });

  it('does not let an unverified copy take a place and retires it while older verified copies stay', async () => {
    listImages([NEW, copy(AMI[1], 28, { verified: false }), copy(AMI[2], 20), copy(AMI[3], 10), copy(AMI[4], 1)]);

    const result = await applyRetention(event(), deps());

    expect(result.kept.map((k) => k.imageId)).toEqual([NEW_COPY, AMI[2], AMI[3]]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1], AMI[4]]);
    expect(ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input.ImageId)).toEqual([AMI[1], AMI[4]]);
  });

  it('keeps the image the SSM parameter points at, with the parameter as its reason', async () => {
    listImages([NEW, copy(AMI[1], 20), copy(AMI[2], 10)]);
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Type: 'String', DataType: 'aws:ec2:image', Value: AMI[2] } });

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ssmMock).toHaveReceivedCommandExactlyOnceWith(GetParameterCommand, { Name: PARAMETER });
    expect(result.kept).toEqual([
      { imageId: NEW_COPY, reason: 'the new copy' },
      { imageId: AMI[2], reason: `SSM parameter ${PARAMETER}` },
    ]);
    expect(ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input)).toEqual([{ ImageId: AMI[1] }]);
  });

  it('protects nothing through the SSM parameter when it does not exist', async () => {
    listImages([NEW, copy(AMI[1], 20)]);
    ssmMock.on(GetParameterCommand).rejects(awsError('ParameterNotFound', ''));

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1]]);
  });

  it.each([
    ['default', [{ VersionNumber: 4, DefaultVersion: true, old: true }, { VersionNumber: 5, DefaultVersion: false, old: false }], 4],
    ['latest', [{ VersionNumber: 6, DefaultVersion: true, old: false }, { VersionNumber: 7, DefaultVersion: false, old: true }], 7],
  ])('keeps an older image that the %s version of a launch template uses', async (_which, versions, versionNumber) => {
    listImages([NEW, copy(AMI[1], 20)]);
    ec2Mock
      .on(DescribeLaunchTemplatesCommand)
      .callsFake((input: DescribeLaunchTemplatesCommandInput) =>
        input.NextToken === 'page-2'
          ? { LaunchTemplates: [{ LaunchTemplateId: 'lt-0abcdef1234567890', LaunchTemplateName: 'web', DefaultVersionNumber: 4 }] }
          : { LaunchTemplates: [{ LaunchTemplateId: 'lt-0aaaaaaaaaaaaaaa0', LaunchTemplateName: 'batch' }], NextToken: 'page-2' },
      );
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [] });
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: 'lt-0abcdef1234567890' }).resolves({
      LaunchTemplateVersions: versions.map((v) => ({
        LaunchTemplateId: 'lt-0abcdef1234567890',
        LaunchTemplateName: 'web',
        VersionNumber: v.VersionNumber,
        DefaultVersion: v.DefaultVersion,
        LaunchTemplateData: { ImageId: v.old ? AMI[1] : NEW_COPY, InstanceType: 't3.micro' },
      })),
    });

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeLaunchTemplatesCommand, 2);
    // ResolveAlias: a version whose image is resolve:ssm:… protects the image the parameter resolves to.
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeLaunchTemplateVersionsCommand, {
      LaunchTemplateId: 'lt-0abcdef1234567890',
      Versions: ['$Default', '$Latest'],
      ResolveAlias: true,
    });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeLaunchTemplateVersionsCommand, {
      LaunchTemplateId: 'lt-0aaaaaaaaaaaaaaa0',
      Versions: ['$Default', '$Latest'],
    });
    expect(result.kept).toContainEqual({ imageId: AMI[1], reason: `launch template web version ${versionNumber}` });
    expect(result.retired).toEqual([]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
  });

  it('keeps an older image that a running instance uses', async () => {
    listImages([NEW, copy(AMI[1], 20), copy(AMI[2], 10)]);
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: 'i-0123456789abcdef0', ImageId: AMI[2], State: { Name: 'running', Code: 16 } }] }],
    });

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeInstancesCommand, {
      Filters: [
        { Name: 'image-id', Values: [AMI[1], AMI[2]] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ],
    });
    expect(result.kept).toEqual([
      { imageId: NEW_COPY, reason: 'the new copy' },
      { imageId: AMI[2], reason: 'used by instance i-0123456789abcdef0' },
    ]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1]]);
  });

  it('retires nothing in a dry run but reports what would go', async () => {
    listImages([NEW, copy(AMI[1], 28), copy(AMI[2], 20), copy(AMI[3], 10)]);

    const result = await applyRetention(event({ keep: 2, dryRun: true }), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteSnapshotCommand, 0);
    expect(result).toMatchObject({
      dryRun: true,
      kept: [
        { imageId: NEW_COPY, reason: 'the new copy' },
        { imageId: AMI[1], reason: 'one of the newest 2 verified copies' },
      ],
      retired: [
        { imageId: AMI[2], snapshotIds: [snap(AMI[2])] },
        { imageId: AMI[3], snapshotIds: [snap(AMI[3])] },
      ],
    });
  });

  it('skips without a single AWS call when there is no lineage', async () => {
    const result = await applyRetention(event({ lineage: null }, { parameterName: null, lineage: null }), deps());

    expect(result).toEqual({ lineage: null, keep: 3, dryRun: false, skipped: NO_LINEAGE, kept: [], retired: [] });
    expect(NO_LINEAGE).toBe('no lineage: set publish.parameterName or retention.lineage');
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it.each([
    ['retention.lineage', { lineage: 'web-fleet' }, { parameterName: null, lineage: null }, 'web-fleet'],
    ['the expanded parameter name', {}, { parameterName: PARAMETER, lineage: null }, PARAMETER],
    ['the lineage PublishImage tagged first', { lineage: 'web-fleet' }, { lineage: 'published' }, 'published'],
  ])('takes the lineage from %s', async (_from, retention, publish, lineage) => {
    listImages([]);

    const result = await applyRetention(event(retention, publish), deps());

    expect(result.lineage).toBe(lineage);
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Filters: [MANAGED_BY_FILTER, { Name: 'tag:ami-pipeline:lineage', Values: [lineage] }, { Name: 'state', Values: ['available'] }],
    });
  });

  it('always filters on the managed-by tag and never touches an image without it', async () => {
    // An endpoint that ignores the tag filters lists an image someone else made with the same lineage tag.
    const foreign = copy(AMI[2], 10, { tags: [{ Key: 'ami-pipeline:lineage', Value: LINEAGE }, { Key: 'ami-pipeline:verified', Value: 'none' }] });
    const impostor = copy(AMI[3], 9, {
      tags: [
        { Key: 'ami-pipeline:managed-by', Value: 'someone-else' },
        { Key: 'ami-pipeline:lineage', Value: LINEAGE },
      ],
    });
    listImages([NEW, copy(AMI[1], 20), foreign, impostor]);

    const result = await applyRetention(event({ keep: 1 }), deps());

    for (const call of ec2Mock.commandCalls(DescribeImagesCommand)) {
      expect(call.args[0].input.Filters).toContainEqual(MANAGED_BY_FILTER);
    }
    expect(ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input.ImageId)).toEqual([AMI[1]]);
    expect(ec2Mock).not.toHaveReceivedCommandWith(DeleteSnapshotCommand, { SnapshotId: snap(AMI[2]) });
    expect(JSON.stringify(result)).not.toContain(AMI[2]);
    expect(JSON.stringify(result)).not.toContain(AMI[3]);
  });

  it('keeps the new copy even when keep is 1 and newer copies exist', async () => {
    listImages([copy(AMI[1], 29), copy(AMI[2], 28), copy(NEW_COPY, 20)]);

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(result.kept).toEqual([{ imageId: NEW_COPY, reason: 'the new copy' }]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[1], AMI[2]]);
    expect(ec2Mock).not.toHaveReceivedCommandWith(DeregisterImageCommand, { ImageId: NEW_COPY });
  });

  it('keeps the new copy when DescribeImages does not list it yet', async () => {
    listImages([copy(AMI[1], 20)]);

    const result = await applyRetention(event({ keep: 2 }), deps());

    expect(result.kept).toEqual([
      { imageId: NEW_COPY, reason: 'the new copy' },
      { imageId: AMI[1], reason: 'one of the newest 2 verified copies' },
    ]);
    expect(result.retired).toEqual([]);
  });

  it('looks for no protection when nothing is to be retired', async () => {
    listImages([NEW, copy(AMI[1], 20)]);

    await applyRetention(event({ keep: 3 }), deps());

    expect(commandNames()).toEqual(['DescribeImagesCommand']);
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it('follows DescribeImages pages and orders copies across them by creation date', async () => {
    ec2Mock
      .on(DescribeImagesCommand)
      .callsFake((input: DescribeImagesCommandInput) =>
        input.NextToken === 'page-2'
          ? { Images: [copy(AMI[1], 28), copy(AMI[3], 10)] }
          : { Images: [copy(AMI[2], 20), NEW], NextToken: 'page-2' },
      );

    const result = await applyRetention(event({ keep: 2 }), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
    expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 2, { Owners: ['self'], NextToken: 'page-2' });
    expect(result.kept.map((k) => k.imageId)).toEqual([NEW_COPY, AMI[1]]);
    expect(result.retired.map((r) => r.imageId)).toEqual([AMI[2], AMI[3]]);
  });

  it('throws AccessDeniedError naming the permissions when the target role may not deregister', async () => {
    const message =
      `You are not authorized to perform this operation. User: ${ROLE_SESSION} is not authorized to perform: ec2:DeregisterImage ` +
      `on resource: arn:aws:ec2:eu-west-1::image/${AMI[1]} because no identity-based policy allows the ec2:DeregisterImage action.`;
    listImages([NEW, copy(AMI[1], 20)]);
    ec2Mock.on(DeregisterImageCommand).rejects(awsError('UnauthorizedOperation', message, 403));

    const error = await rejection(applyRetention(event({ keep: 1 }), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'UnauthorizedOperation', message });
    expect(error.message).toContain('ec2:DeregisterImage and ec2:DeleteSnapshot');
    expect(error.message).toContain('ami-pipeline:managed-by');
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteSnapshotCommand, 0);
  });

  it('leaves a snapshot another image still uses and goes on', async () => {
    listImages([NEW, copy(AMI[1], 20), copy(AMI[2], 10)]);
    ec2Mock
      .on(DeleteSnapshotCommand, { SnapshotId: snap(AMI[1]) })
      .rejects(awsError('InvalidSnapshot.InUse', `The snapshot ${snap(AMI[1])} is currently in use by ${AMI[4]}`));

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(result.retired).toEqual([
      { imageId: AMI[1], snapshotIds: [] },
      { imageId: AMI[2], snapshotIds: [snap(AMI[2])] },
    ]);
  });

  it('still deletes the snapshots of an image another run deregistered in the meantime', async () => {
    listImages([NEW, copy(AMI[1], 20)]);
    ec2Mock.on(DeregisterImageCommand).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${AMI[1]}]' does not exist`));

    const result = await applyRetention(event({ keep: 1 }), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DeleteSnapshotCommand, { SnapshotId: snap(AMI[1]) });
    expect(result.retired).toEqual([{ imageId: AMI[1], snapshotIds: [snap(AMI[1])] }]);
  });

  it('turns EC2 throttling into the retryable AwsThrottlingError', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));

    const error = await rejection(applyRetention(event(), deps()));

    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
  });
});

describe('applyRetention handler', () => {
  it.each([
    ['a missing publish result', { item: withRetention(), copy: { imageId: NEW_COPY } }, 'event.publish'],
    ['a copy without an image ID', { ...event(), copy: {} }, 'event.copy.imageId'],
    ['no payload at all', null, 'event.'],
  ])('rejects %s with InvalidInputError and makes no AWS call', async (_what, payload, field) => {
    const error = await rejection(makeHandler(deps())(payload));

    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain(field);
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it('applies retention for a well-formed payload', async () => {
    listImages([NEW]);

    const result = await makeHandler(deps())(event());

    expect(result).toMatchObject({ lineage: LINEAGE, skipped: null, kept: [{ imageId: NEW_COPY, reason: 'the new copy' }], retired: [] });
  });
});
