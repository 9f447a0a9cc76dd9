import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImagesCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeregistrationProtectionCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  type Image,
  type LaunchTemplateVersion,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { handler, makeHandler, parameterNameFor, publishImage, type PublishEvent } from '../../functions/publish';
import type { TargetItem } from '../../functions/shared/plan';
import { ACCOUNT_A, KEY_A_EU, SOURCE_IMAGE, awsError, fixedNow, item, rejection, source, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);

const COPY = 'ami-0fedcba9876543210';
const OLD_COPY = 'ami-0aaaabbbbccccdddd';
const ROOT_SNAPSHOT = 'snap-0fedcba9876543210';
const DATA_SNAPSHOT = 'snap-0123456789fedcba0';
const TEMPLATE = '/ami-pipeline/{sourceName}/latest';
const PARAMETER = '/ami-pipeline/base-image-2026-11-29/latest';
const LAUNCH_TEMPLATE = 'web-fleet';
const LAUNCH_TEMPLATE_ID = 'lt-0abcd1234ef567890';
const ROLE_SESSION = `arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/ami-pipeline-exec-1`;

const deps = () => ({ clients: testClients(), now: fixedNow });

function event(settings: Partial<TargetItem['settings']> = {}): PublishEvent {
  return { item: item({}, { publish: { parameterName: null, launchTemplates: [], protect: false }, ...settings }), copy: { imageId: COPY, kmsKeyArn: KEY_A_EU } };
}
const publish = (parameterName: string | null, launchTemplates: string[] = [], protect: boolean | 'with-cooldown' = false) => ({
  publish: { parameterName, launchTemplates, protect },
});
const retention = (lineage: string | null) => ({ retention: { ...item().settings.retention, lineage } });
const NOT_PROTECTED = { imageId: null, withCooldown: false, movedFrom: [] };
const PUBLISHED_AT = { Key: 'ami-pipeline:published-at', Value: fixedNow().toISOString() };

const copyImage: Image = {
  ImageId: COPY,
  State: 'available',
  BlockDeviceMappings: [
    { DeviceName: '/dev/xvda', Ebs: { SnapshotId: ROOT_SNAPSHOT, Encrypted: true, KmsKeyId: KEY_A_EU, VolumeSize: 8 } },
    { DeviceName: '/dev/sdf', Ebs: { SnapshotId: DATA_SNAPSHOT, Encrypted: true, KmsKeyId: KEY_A_EU, VolumeSize: 20 } },
    { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
  ],
};

function defaultVersion(imageId: string, versionNumber = 4): LaunchTemplateVersion {
  return {
    LaunchTemplateId: LAUNCH_TEMPLATE_ID,
    LaunchTemplateName: LAUNCH_TEMPLATE,
    VersionNumber: versionNumber,
    DefaultVersion: true,
    LaunchTemplateData: { ImageId: imageId, InstanceType: 't3.micro' },
  };
}

const parameterMissing = () => awsError('ParameterNotFound', 'UnknownError');
const tagInputs = () => ec2Mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input);

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [copyImage] });
  ec2Mock.on(CreateTagsCommand).resolves({});
  ssmMock.on(GetParameterCommand).rejects(parameterMissing());
  ssmMock.on(PutParameterCommand).resolves({ Version: 1, Tier: 'Standard' });
});

describe('parameterNameFor', () => {
  it('expands the source name and image ID', () => {
    expect(parameterNameFor(TEMPLATE, source)).toBe(PARAMETER);
    expect(parameterNameFor('/images/{sourceImageId}', source)).toBe(`/images/${SOURCE_IMAGE}`);
  });

  it('replaces characters SSM does not allow in a name with a dash', () => {
    const named = { name: 'Base image (2026) v1.2+hardened:final', imageId: SOURCE_IMAGE };
    expect(parameterNameFor(TEMPLATE, named)).toBe('/ami-pipeline/Base-image--2026--v1.2-hardened-final/latest');
  });

  it('keeps at most 1011 characters', () => {
    const name = parameterNameFor('/ami-pipeline/{sourceName}', { name: 'x'.repeat(2000), imageId: SOURCE_IMAGE });
    expect(name).toHaveLength(1011);
    expect(name.startsWith('/ami-pipeline/xxx')).toBe(true);
  });
});

describe('publishImage: the parameter', () => {
  it('writes the expanded parameter as an aws:ec2:image String pointing at the copy', async () => {
    const result = await publishImage(event(publish(TEMPLATE)), deps());

    expect(ssmMock).toHaveReceivedCommandWith(GetParameterCommand, { Name: PARAMETER });
    expect(ssmMock.commandCalls(PutParameterCommand).map((c) => c.args[0].input)).toEqual([
      {
        Name: PARAMETER,
        Value: COPY,
        Type: 'String',
        DataType: 'aws:ec2:image',
        Overwrite: true,
        Description: 'encrypted-ami-pipeline: the verified, encrypted copy of base-image-2026-11-29',
      },
    ]);
    expect(result).toEqual({ parameterName: PARAMETER, parameterVersion: 1, lineage: PARAMETER, launchTemplates: [], protection: NOT_PROTECTED });
  });

  it('overwrites a parameter that points at an older copy and reports the new version', async () => {
    ssmMock.on(GetParameterCommand).resolves({
      Parameter: { Name: PARAMETER, Type: 'String', DataType: 'aws:ec2:image', Value: OLD_COPY, Version: 4 },
    });
    ssmMock.on(PutParameterCommand).resolves({ Version: 5, Tier: 'Standard' });

    const result = await publishImage(event(publish(TEMPLATE)), deps());

    expect(ssmMock).toHaveReceivedCommandWith(PutParameterCommand, { Name: PARAMETER, Value: COPY, Overwrite: true });
    expect(result.parameterVersion).toBe(5);
  });

  it('does not write a parameter that already holds the copy and reports its version', async () => {
    ssmMock.on(GetParameterCommand).resolves({
      Parameter: { Name: PARAMETER, Type: 'String', DataType: 'aws:ec2:image', Value: COPY, Version: 3 },
    });

    const result = await publishImage(event(publish(TEMPLATE)), deps());

    expect(ssmMock).toHaveReceivedCommandTimes(PutParameterCommand, 0);
    expect(result).toMatchObject({ parameterName: PARAMETER, parameterVersion: 3 });
  });

  it('makes no SSM call at all when no parameter is configured', async () => {
    const result = await publishImage(event(), deps());

    expect(ssmMock.calls()).toHaveLength(0);
    expect(result).toEqual({ parameterName: null, parameterVersion: null, lineage: null, launchTemplates: [], protection: NOT_PROTECTED });
  });
});

describe('publishImage: tags', () => {
  it('tags the copy and its EBS snapshots with the check it passed and the lineage of the parameter', async () => {
    await publishImage(event(publish(TEMPLATE)), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, { ImageIds: [COPY] });
    expect(tagInputs()).toEqual([
      {
        Resources: [COPY, ROOT_SNAPSHOT, DATA_SNAPSHOT],
        Tags: [{ Key: 'ami-pipeline:verified', Value: 'auto-scaling' }, PUBLISHED_AT, { Key: 'ami-pipeline:lineage', Value: PARAMETER }],
      },
    ]);
  });

  it('takes the lineage from retention.lineage over the parameter name', async () => {
    const result = await publishImage(event({ ...publish(TEMPLATE), ...retention('web/base') }), deps());

    expect(result.lineage).toBe('web/base');
    expect(tagInputs()[0]?.Tags).toContainEqual({ Key: 'ami-pipeline:lineage', Value: 'web/base' });
  });

  it('tags only the check it passed when there is neither a lineage nor a parameter', async () => {
    await publishImage(event({ verify: { mode: 'none', instanceType: null, timeoutMinutes: 15 } }), deps());

    expect(tagInputs()).toEqual([{ Resources: [COPY, ROOT_SNAPSHOT, DATA_SNAPSHOT], Tags: [{ Key: 'ami-pipeline:verified', Value: 'none' }, PUBLISHED_AT] }]);
  });

  it('does not tag the copy into its lineage when the parameter write fails', async () => {
    ssmMock.on(PutParameterCommand).rejects(awsError('InternalServerError', 'An internal error occurred.', 500));

    const error = await rejection(publishImage(event(publish(TEMPLATE)), deps()));

    expect(error.name).toBe('AwsServiceUnavailableError');
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 0);
  });

  it.each([
    ['no longer exists', () => ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${COPY}]' does not exist`))],
    ['is no longer listed', () => ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] })],
  ])('refuses with PublishFailedError when the copy %s, before publishing anything', async (_what, arrange) => {
    arrange();

    const error = await rejection(publishImage(event(publish(TEMPLATE, [LAUNCH_TEMPLATE])), deps()));

    expect(error.name).toBe('PublishFailedError');
    expect(error.message).toContain(COPY);
    expect(error.message).toContain('Run the pipeline again');
    expect(ssmMock.calls()).toHaveLength(0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeLaunchTemplateVersionsCommand, 0);
  });
});

describe('publishImage: launch templates', () => {
  it('creates a version with the copy from the default version and makes it the default', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).resolves({
      LaunchTemplateVersion: { LaunchTemplateId: LAUNCH_TEMPLATE_ID, LaunchTemplateName: LAUNCH_TEMPLATE, VersionNumber: 5, DefaultVersion: false },
    });
    ec2Mock.on(ModifyLaunchTemplateCommand).resolves({ LaunchTemplate: { LaunchTemplateName: LAUNCH_TEMPLATE, DefaultVersionNumber: 5 } });

    const result = await publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps());

    expect(ec2Mock.commandCalls(DescribeLaunchTemplateVersionsCommand).map((c) => c.args[0].input)).toEqual([
      { LaunchTemplateName: LAUNCH_TEMPLATE, Versions: ['$Default'] },
    ]);
    const created = ec2Mock.commandCalls(CreateLaunchTemplateVersionCommand).map((c) => c.args[0].input);
    expect(created).toEqual([
      {
        LaunchTemplateName: LAUNCH_TEMPLATE,
        SourceVersion: '4',
        VersionDescription: `encrypted-ami-pipeline: ${COPY}`,
        LaunchTemplateData: { ImageId: COPY },
        ClientToken: created[0]?.ClientToken,
      },
    ]);
    expect(created[0]?.ClientToken).toMatch(/^[0-9a-f]{64}$/);
    expect(ec2Mock.commandCalls(ModifyLaunchTemplateCommand).map((c) => c.args[0].input)).toEqual([
      { LaunchTemplateName: LAUNCH_TEMPLATE, DefaultVersion: '5' },
    ]);
    expect(result.launchTemplates).toEqual([{ name: LAUNCH_TEMPLATE, version: 5, changed: true }]);
  });

  it('sends the same client token when a retry creates the version again', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });
    ec2Mock.on(ModifyLaunchTemplateCommand).resolves({});

    await publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps());
    await publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps());

    const tokens = ec2Mock.commandCalls(CreateLaunchTemplateVersionCommand).map((c) => c.args[0].input.ClientToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).toBe(tokens[0]);
  });

  it('leaves a launch template whose default version already uses the copy unchanged', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(COPY, 7)] });

    const result = await publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CreateLaunchTemplateVersionCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyLaunchTemplateCommand, 0);
    expect(result.launchTemplates).toEqual([{ name: LAUNCH_TEMPLATE, version: 7, changed: false }]);
  });

  it('leaves a launch template that resolves its image from an SSM parameter unchanged', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(`resolve:ssm:${PARAMETER}`, 2)] });

    const result = await publishImage(event(publish(TEMPLATE, [LAUNCH_TEMPLATE])), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CreateLaunchTemplateVersionCommand, 0);
    expect(result.launchTemplates).toEqual([{ name: LAUNCH_TEMPLATE, version: 2, changed: false }]);
  });

  it('updates every listed launch template in turn', async () => {
    ec2Mock
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateName: LAUNCH_TEMPLATE })
      .resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] })
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateName: 'batch-workers' })
      .resolves({ LaunchTemplateVersions: [{ ...defaultVersion(COPY, 9), LaunchTemplateName: 'batch-workers' }] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });
    ec2Mock.on(ModifyLaunchTemplateCommand).resolves({});

    const result = await publishImage(event(publish(null, [LAUNCH_TEMPLATE, 'batch-workers'])), deps());

    expect(result.launchTemplates).toEqual([
      { name: LAUNCH_TEMPLATE, version: 5, changed: true },
      { name: 'batch-workers', version: 9, changed: false },
    ]);
  });

  it.each([
    ['DescribeLaunchTemplateVersions', DescribeLaunchTemplateVersionsCommand, 'InvalidLaunchTemplateName.NotFoundException', `The specified launch template, with template name ${LAUNCH_TEMPLATE}, does not exist.`],
    ['ModifyLaunchTemplate', ModifyLaunchTemplateCommand, 'InvalidLaunchTemplateId.NotFound', `The specified launch template, with template ID ${LAUNCH_TEMPLATE_ID}, does not exist.`],
  ])('refuses a launch template that %s reports missing with PublishFailedError and the fix', async (_call, command, code, message) => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });
    ec2Mock.on(command).rejects(awsError(code, message));

    const error = await rejection(publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps()));

    expect(error.name).toBe('PublishFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code, message });
    expect(error.message).toContain(`Launch template ${LAUNCH_TEMPLATE} does not exist in account ${ACCOUNT_A}, region eu-west-1`);
    expect(error.message).toContain('remove it from publish.launchTemplates');
  });
});

describe('publishImage: AWS errors', () => {
  it('turns SSM throttling into the retryable AwsThrottlingError', async () => {
    ssmMock.on(GetParameterCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));

    const error = await rejection(publishImage(event(publish(TEMPLATE)), deps()));

    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
    expect(ssmMock).toHaveReceivedCommandTimes(PutParameterCommand, 0);
  });

  it('turns EC2 throttling of a launch template call into the retryable AwsThrottlingError', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));

    const error = await rejection(publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps()));

    expect(error.name).toBe('AwsThrottlingError');
  });

  it('names ssm:PutParameter when SSM denies the parameter write', async () => {
    const message =
      `User: ${ROLE_SESSION} is not authorized to perform: ssm:PutParameter on resource: ` +
      `arn:aws:ssm:eu-west-1:${ACCOUNT_A}:parameter${PARAMETER} because no identity-based policy allows the ssm:PutParameter action`;
    ssmMock.on(PutParameterCommand).rejects(awsError('AccessDeniedException', message));

    const error = await rejection(publishImage(event(publish(TEMPLATE)), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.aws).toEqual({ code: 'AccessDeniedException', message });
    expect(error.message).toContain(`The target role needs ssm:GetParameter and ssm:PutParameter on parameter ${PARAMETER}`);
  });

  it('names ec2:CreateLaunchTemplateVersion when EC2 denies the new version', async () => {
    const message =
      `You are not authorized to perform this operation. User: ${ROLE_SESSION} is not authorized to perform: ec2:CreateLaunchTemplateVersion ` +
      `on resource: arn:aws:ec2:eu-west-1:${ACCOUNT_A}:launch-template/${LAUNCH_TEMPLATE_ID} because no identity-based policy allows the ` +
      'ec2:CreateLaunchTemplateVersion action. Encoded authorization failure message: 3Hj2kVbZ1cS9';
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).rejects(awsError('UnauthorizedOperation', message, 403));

    const error = await rejection(publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.aws?.code).toBe('UnauthorizedOperation');
    expect(error.message).toContain(`The target role needs ec2:CreateLaunchTemplateVersion on launch template ${LAUNCH_TEMPLATE}.`);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyLaunchTemplateCommand, 0);
  });

  it('names ec2:ModifyLaunchTemplate when EC2 denies the new default', async () => {
    const message =
      `You are not authorized to perform this operation. User: ${ROLE_SESSION} is not authorized to perform: ec2:ModifyLaunchTemplate ` +
      `on resource: arn:aws:ec2:eu-west-1:${ACCOUNT_A}:launch-template/${LAUNCH_TEMPLATE_ID} because no identity-based policy allows the ` +
      'ec2:ModifyLaunchTemplate action. Encoded authorization failure message: 9fQw0LmXa2Tz';
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [defaultVersion(OLD_COPY, 4)] });
    ec2Mock.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });
    ec2Mock.on(ModifyLaunchTemplateCommand).rejects(awsError('UnauthorizedOperation', message, 403));

    const error = await rejection(publishImage(event(publish(null, [LAUNCH_TEMPLATE])), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('ec2:ModifyLaunchTemplate on launch template');
  });
});

describe('publishImage handler', () => {
  it.each([
    ['a missing copy', { item: item() }, 'event.copy'],
    ['an image ID that is not a string', { item: item(), copy: { imageId: 42, kmsKeyArn: KEY_A_EU } }, 'event.copy.imageId'],
    ['an item without settings', { item: { ...item(), settings: undefined }, copy: { imageId: COPY, kmsKeyArn: KEY_A_EU } }, 'event.item.settings'],
    ['no payload at all', null, 'event.'],
  ])('rejects %s with InvalidInputError and makes no AWS call', async (_what, payload, field) => {
    const error = await rejection(handler(payload));

    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain(field);
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it('publishes through the given clients for a well-formed payload', async () => {
    const result = await makeHandler(deps())(event(publish(TEMPLATE)));

    expect(result).toEqual({ parameterName: PARAMETER, parameterVersion: 1, lineage: PARAMETER, launchTemplates: [], protection: NOT_PROTECTED });
  });
});

describe('publishImage: deregistration protection', () => {
  const protectedOld: Image = {
    ImageId: OLD_COPY,
    State: 'available',
    DeregistrationProtection: 'enabled',
    Tags: [
      { Key: 'ami-pipeline:lineage', Value: PARAMETER },
      { Key: 'ami-pipeline:protected', Value: 'true' },
    ],
  };
  const lineageListing = { Filters: [{ Name: 'tag:ami-pipeline:managed-by', Values: ['encrypted-ami-pipeline'] }, { Name: `tag:ami-pipeline:lineage`, Values: [PARAMETER] }, { Name: 'tag-key', Values: ['ami-pipeline:protected'] }] };

  it('protects the published copy and moves the protection off the older copy the pipeline protected', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY] }).resolves({ Images: [copyImage] });
    ec2Mock.on(DescribeImagesCommand, lineageListing).resolves({ Images: [protectedOld, { ...copyImage, Tags: [{ Key: 'ami-pipeline:protected', Value: 'true' }] }] });
    ec2Mock.on(EnableImageDeregistrationProtectionCommand).resolves({ Return: 'enabled-without-cooldown' });
    ec2Mock.on(DisableImageDeregistrationProtectionCommand).resolves({ Return: 'disabled' });

    const result = await publishImage(event(publish(TEMPLATE, [], true)), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(EnableImageDeregistrationProtectionCommand, { ImageId: COPY, WithCooldown: false });
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [COPY], Tags: [{ Key: 'ami-pipeline:protected', Value: 'true' }] });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, { Owners: ['self'], IncludeDisabled: true, ...lineageListing });
    expect(ec2Mock).toHaveReceivedCommandTimes(DisableImageDeregistrationProtectionCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(DisableImageDeregistrationProtectionCommand, { ImageId: OLD_COPY });
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteTagsCommand, { Resources: [OLD_COPY], Tags: [{ Key: 'ami-pipeline:protected' }] });
    expect(result.protection).toEqual({ imageId: COPY, withCooldown: false, movedFrom: [{ imageId: OLD_COPY, state: 'disabled' }] });
  });

  it('enables it WithCooldown for "with-cooldown" and reports the cooldown EC2 gives the old copy', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY] }).resolves({ Images: [copyImage] });
    ec2Mock.on(DescribeImagesCommand, lineageListing).resolves({ Images: [{ ...protectedOld, DeregistrationProtection: 'enabled-with-cooldown' }] });
    ec2Mock.on(DisableImageDeregistrationProtectionCommand).resolves({ Return: 'disabled-until 2026-11-30T12:00:00.000Z' });

    const result = await publishImage(event(publish(TEMPLATE, [], 'with-cooldown')), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(EnableImageDeregistrationProtectionCommand, { ImageId: COPY, WithCooldown: true });
    expect(result.protection).toEqual({ imageId: COPY, withCooldown: true, movedFrom: [{ imageId: OLD_COPY, state: 'disabled-until 2026-11-30T12:00:00.000Z' }] });
  });

  it('leaves alone an image protected by someone else (without the pipeline\'s tag)', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY] }).resolves({ Images: [copyImage] });
    ec2Mock.on(DescribeImagesCommand, lineageListing).resolves({ Images: [{ ...protectedOld, Tags: [{ Key: 'ami-pipeline:lineage', Value: PARAMETER }] }] });

    await publishImage(event(publish(TEMPLATE, [], true)), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DisableImageDeregistrationProtectionCommand, 0);
  });

  it('still lifts the old protection when publish.protect is false, and protects nothing new', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY] }).resolves({ Images: [copyImage] });
    ec2Mock.on(DescribeImagesCommand, lineageListing).resolves({ Images: [protectedOld] });
    ec2Mock.on(DisableImageDeregistrationProtectionCommand).resolves({ Return: 'disabled' });

    const result = await publishImage(event(publish(TEMPLATE)), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(EnableImageDeregistrationProtectionCommand, 0);
    expect(result.protection).toEqual({ imageId: null, withCooldown: false, movedFrom: [{ imageId: OLD_COPY, state: 'disabled' }] });
  });

  it('names the permissions when the target role may not protect images', async () => {
    ec2Mock.on(EnableImageDeregistrationProtectionCommand).rejects(
      awsError('UnauthorizedOperation', 'You are not authorized to perform this operation. User: ' + ROLE_SESSION + ' is not authorized to perform: ec2:EnableImageDeregistrationProtection', 403),
    );

    const error = await rejection(publishImage(event(publish(TEMPLATE, [], true)), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('ec2:EnableImageDeregistrationProtection');
  });
});
