import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
  type LifecycleState,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeLaunchTemplatesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Image,
  type Instance,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { TargetItem } from '../../functions/shared/plan';
import { launchCheckName } from '../../functions/shared/tags';
import { checkLaunch, cleanUpLaunchCheck, startLaunchCheck, type LaunchState } from '../../functions/verify-launch';
import { ACCOUNT_A, KEY_A_EU, SOURCE_IMAGE, awsError, fixedNow, item, rejection, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const asMock = mockClient(AutoScalingClient);

const COPY_ID = 'ami-0fedcba9876543210';
const COPY = { imageId: COPY_ID, kmsKeyArn: KEY_A_EU };
const OTHER_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/55555555-5555-5555-5555-555555555555`;
const NAME = launchCheckName('exec-1', ACCOUNT_A, 'eu-west-1');
const INSTANCE_ID = 'i-0123456789abcdef0';
const VOLUME_ID = 'vol-0123456789abcdef0';
const ROLE_SESSION = `arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/ami-pipeline-exec-1`;

/** One look per check (the approach, where a check keeps looking, has tests of its own). */
const deps = () => ({ clients: testClients(), now: fixedNow, approachSeconds: 0 });
const withMode = (mode: TargetItem['settings']['verify']['mode'], target: Partial<TargetItem['target']> = {}): TargetItem =>
  item(target, { verify: { mode, instanceType: null, timeoutMinutes: 15 } });

function image(overrides: Partial<Image> = {}): Image {
  return {
    ImageId: COPY_ID,
    State: 'available',
    Architecture: 'arm64',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', VolumeSize: 16, Encrypted: true, KmsKeyId: KEY_A_EU } },
    ],
    ...overrides,
  };
}

const TAGS = [
  { Key: 'Name', Value: NAME },
  { Key: 'ami-pipeline:launch-check', Value: NAME },
  { Key: 'ami-pipeline:execution', Value: 'exec-1' },
  { Key: 'ami-pipeline:source-image', Value: SOURCE_IMAGE },
  { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
];

const ROOT_MAPPING = [
  { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, KmsKeyId: KEY_A_EU, VolumeSize: 16, VolumeType: 'gp3' as const, DeleteOnTermination: true } },
];

function launchState(overrides: Partial<LaunchState> = {}): LaunchState {
  return {
    mode: 'auto-scaling',
    state: 'pending',
    name: NAME,
    instanceId: null,
    instanceType: 't4g.micro',
    subnetId: 'subnet-0default00000000a',
    volumeId: null,
    attempt: 0,
    waitSeconds: 45,
    startedAt: '2026-11-29T12:00:00.000Z',
    deadline: '2026-11-29T12:15:00.000Z',
    checkedAt: '2026-11-29T12:00:00.000Z',
    ...overrides,
  };
}

function runningInstance(overrides: Partial<Instance> = {}): Instance {
  return {
    InstanceId: INSTANCE_ID,
    State: { Name: 'running', Code: 16 },
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeId: VOLUME_ID, Status: 'attached' } }],
    ...overrides,
  };
}

beforeEach(() => {
  ec2Mock.reset();
  asMock.reset();
});

describe('startLaunchCheck', () => {
  it('skips the check and sends nothing in mode none', async () => {
    const result = await startLaunchCheck(withMode('none'), COPY, deps());

    expect(result).toMatchObject({ mode: 'none', state: 'skipped', name: null, instanceId: null, waitSeconds: 0 });
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(asMock.calls()).toHaveLength(0);
  });

  it('launches an Auto Scaling group of one from a template that maps the root volume to the target key', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image()] });
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0default00000000a', State: 'available', DefaultForAz: true }] });
    ec2Mock.on(CreateLaunchTemplateCommand).resolves({ LaunchTemplate: { LaunchTemplateName: NAME } });
    asMock.on(CreateAutoScalingGroupCommand).resolves({});

    const result = await startLaunchCheck(withMode('auto-scaling'), COPY, deps());

    expect(NAME).toMatch(/^ami-pipeline-verify-[0-9a-f]{20}$/);
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, { ImageIds: [COPY_ID] });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSubnetsCommand, { Filters: [{ Name: 'default-for-az', Values: ['true'] }] });
    expect(ec2Mock).toHaveReceivedCommandWith(CreateLaunchTemplateCommand, {
      LaunchTemplateName: NAME,
      LaunchTemplateData: expect.objectContaining({
        ImageId: COPY_ID,
        InstanceType: 't4g.micro',
        BlockDeviceMappings: ROOT_MAPPING,
        TagSpecifications: [
          { ResourceType: 'instance', Tags: TAGS },
          { ResourceType: 'volume', Tags: TAGS },
        ],
      }),
    });
    expect(asMock).toHaveReceivedCommandWith(CreateAutoScalingGroupCommand, {
      AutoScalingGroupName: NAME,
      LaunchTemplate: { LaunchTemplateName: NAME, Version: '$Latest' },
      MinSize: 1,
      MaxSize: 1,
      DesiredCapacity: 1,
      VPCZoneIdentifier: 'subnet-0default00000000a',
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(RunInstancesCommand, 0);
    expect(result).toEqual({
      mode: 'auto-scaling',
      state: 'pending',
      name: NAME,
      instanceId: null,
      instanceType: 't4g.micro',
      subnetId: 'subnet-0default00000000a',
      volumeId: null,
      attempt: 0,
      waitSeconds: 45,
      startedAt: '2026-11-29T12:00:00.000Z',
      deadline: '2026-11-29T12:15:00.000Z',
      checkedAt: '2026-11-29T12:00:00.000Z',
    });
  });

  it('picks t3.micro for an x86_64 image and uses the given subnet without looking for a default one', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ Architecture: 'x86_64' })] });
    ec2Mock.on(CreateLaunchTemplateCommand).resolves({});
    asMock.on(CreateAutoScalingGroupCommand).resolves({});

    const result = await startLaunchCheck(withMode('auto-scaling', { subnetId: 'subnet-0given000000000b' }), COPY, deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeSubnetsCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandWith(CreateLaunchTemplateCommand, {
      LaunchTemplateData: expect.objectContaining({ InstanceType: 't3.micro' }),
    });
    expect(asMock).toHaveReceivedCommandWith(CreateAutoScalingGroupCommand, { VPCZoneIdentifier: 'subnet-0given000000000b' });
    expect(result).toMatchObject({ instanceType: 't3.micro', subnetId: 'subnet-0given000000000b' });
  });

  it('tolerates the template and group already existing on a re-run', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image()] });
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0default00000000a', State: 'available' }] });
    ec2Mock.on(CreateLaunchTemplateCommand).rejects(awsError('InvalidLaunchTemplateName.AlreadyExistsException', 'Launch template name already in use.'));
    asMock
      .on(CreateAutoScalingGroupCommand)
      .rejects(awsError('AlreadyExists', `AutoScalingGroup by this name already exists - A group with the name ${NAME} already exists`));

    const result = await startLaunchCheck(withMode('auto-scaling'), COPY, deps());

    expect(asMock).toHaveReceivedCommandTimes(CreateAutoScalingGroupCommand, 1);
    expect(result).toMatchObject({ state: 'pending', name: NAME });
  });

  it('does not swallow other errors creating the group', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image()] });
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0default00000000a', State: 'available' }] });
    ec2Mock.on(CreateLaunchTemplateCommand).resolves({});
    asMock
      .on(CreateAutoScalingGroupCommand)
      .rejects(awsError('LimitExceeded', 'You have reached your quota of 500 groups for this account in this region.'));

    const error = await rejection(startLaunchCheck(withMode('auto-scaling'), COPY, deps()));

    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.aws?.code).toBe('LimitExceeded');
  });

  it('asks for verify.subnetIds when the region has no default subnet and none is given', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image()] });
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [] });

    const error = await rejection(startLaunchCheck(withMode('auto-scaling'), COPY, deps()));

    expect(error.name).toBe('LaunchFailedError');
    expect(error.message).toContain('verify.subnetIds');
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateLaunchTemplateCommand, 0);
    expect(asMock).toHaveReceivedCommandTimes(CreateAutoScalingGroupCommand, 0);
  });

  it('launches one instance with the same root mapping, subnet, client token and tags in mode run-instances', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ Architecture: 'x86_64' })] });
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0default00000000a', State: 'available' }] });
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: INSTANCE_ID }] });

    const result = await startLaunchCheck(withMode('run-instances'), COPY, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(RunInstancesCommand, {
      ImageId: COPY_ID,
      InstanceType: 't3.micro',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-0default00000000a',
      BlockDeviceMappings: ROOT_MAPPING,
      ClientToken: NAME,
      TagSpecifications: [
        { ResourceType: 'instance', Tags: TAGS },
        { ResourceType: 'volume', Tags: TAGS },
      ],
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateLaunchTemplateCommand, 0);
    expect(asMock.calls()).toHaveLength(0);
    expect(result).toMatchObject({ mode: 'run-instances', state: 'pending', name: NAME, instanceId: INSTANCE_ID, waitSeconds: 45 });
  });
});

/** DescribeAutoScalingGroups' answer for the launch check's group of one, its instance in `state`. */
const launchGroup = (state: LifecycleState, createdTime = new Date('2026-11-29T12:00:00.000Z')) => ({
  AutoScalingGroups: [
    {
      AutoScalingGroupName: NAME,
      MinSize: 1,
      MaxSize: 1,
      DesiredCapacity: 1,
      DefaultCooldown: 300,
      AvailabilityZones: ['eu-west-1a'],
      HealthCheckType: 'EC2',
      CreatedTime: createdTime,
      Instances: [{ InstanceId: INSTANCE_ID, LifecycleState: state, AvailabilityZone: 'eu-west-1a', HealthStatus: 'Healthy', ProtectedFromScaleIn: false }],
    },
  ],
});

describe('checkLaunch', () => {
  it('keeps waiting while the group has no instance in service', async () => {
    asMock.on(DescribeAutoScalingGroupsCommand).resolves(launchGroup('Pending'));
    asMock.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });

    const result = await checkLaunch(withMode('auto-scaling'), COPY, launchState(), deps());

    expect(asMock).toHaveReceivedCommandWith(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: [NAME] });
    expect(asMock).toHaveReceivedCommandWith(DescribeScalingActivitiesCommand, { AutoScalingGroupName: NAME });
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(result).toEqual(launchState({ attempt: 1, waitSeconds: 90 }));
  });

  it('waits longer on each poll, up to 2 minutes', async () => {
    asMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    asMock.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });

    const waits: number[] = [];
    let launch = launchState();
    for (let i = 0; i < 4; i += 1) {
      launch = await checkLaunch(withMode('auto-scaling'), COPY, launch, deps());
      waits.push(launch.waitSeconds);
    }

    expect(waits).toEqual([90, 120, 120, 120]);
    expect(launch.attempt).toBe(4);
  });

  it('fails with an explanation of the key grant when the group reports Client.InternalError', async () => {
    const statusMessage =
      'Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: Client.InternalError: Client error on launch';
    asMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    asMock.on(DescribeScalingActivitiesCommand).resolves({
      Activities: [
        {
          ActivityId: '5e5d4c3b-2a19-4f8e-9d7c-6b5a49382716',
          AutoScalingGroupName: NAME,
          Cause: 'At 2026-11-29T12:00:30Z an instance was started in response to a difference between desired and actual capacity.',
          StartTime: new Date('2026-11-29T12:00:30.000Z'),
          StatusCode: 'Failed',
          StatusMessage: statusMessage,
        },
      ],
    });

    const error = await rejection(checkLaunch(withMode('auto-scaling'), COPY, launchState(), deps()));

    expect(error.name).toBe('LaunchFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'Client.InternalError', message: statusMessage });
    expect(error.message).toContain('Client error on launch');
    expect(error.message).toContain('grant for AWSServiceRoleForAutoScaling');
  });

  it('fails with the state reason when the test instance is terminated for an unusable key', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            runningInstance({
              State: { Name: 'terminated', Code: 48 },
              StateReason: { Code: 'Client.InvalidKMSKey.InvalidState', Message: 'The KMS key provided is in an incorrect state' },
            }),
          ],
        },
      ],
    });

    const error = await rejection(
      checkLaunch(withMode('run-instances'), COPY, launchState({ mode: 'run-instances', instanceId: INSTANCE_ID }), deps()),
    );

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeInstancesCommand, { InstanceIds: [INSTANCE_ID] });
    expect(error.name).toBe('LaunchFailedError');
    expect(error.aws).toEqual({ code: 'Client.InvalidKMSKey.InvalidState', message: 'The KMS key provided is in an incorrect state' });
    expect(error.message).toContain(`test instance ${INSTANCE_ID} of ${COPY_ID} went terminated`);
    expect(error.message).toContain('Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state');
  });

  it('keeps looking itself, every 5 s for up to a minute, while the instance starts', async () => {
    let now = fixedNow().getTime();
    const slept: number[] = [];
    const group = (state: LifecycleState) => launchGroup(state, new Date(now));
    asMock.on(DescribeAutoScalingGroupsCommand).resolvesOnce(group('Pending')).resolvesOnce(group('Pending')).resolves(group('InService'));
    asMock.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [runningInstance()] }] });
    ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: VOLUME_ID, Encrypted: true, KmsKeyId: KEY_A_EU }] });

    const result = await checkLaunch(withMode('auto-scaling'), COPY, launchState(), {
      clients: testClients(),
      now: () => new Date(now),
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
    });

    expect(slept).toEqual([5_000, 5_000]);
    expect(result).toMatchObject({ state: 'verified', instanceId: INSTANCE_ID, volumeId: VOLUME_ID, attempt: 0 });
  });

  it('gives up looking itself after a minute and goes round the loop', async () => {
    let now = fixedNow().getTime();
    asMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    asMock.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });

    const result = await checkLaunch(withMode('auto-scaling'), COPY, launchState(), {
      clients: testClients(),
      now: () => new Date(now),
      sleep: async (ms: number) => void (now += ms),
    });

    expect(now - fixedNow().getTime()).toBe(60_000);
    expect(asMock).toHaveReceivedCommandTimes(DescribeAutoScalingGroupsCommand, 13);
    expect(result).toMatchObject({ state: 'pending', attempt: 1, waitSeconds: 90 });
  });

  it('verifies a running instance whose root volume is encrypted with the target key', async () => {
    asMock.on(DescribeAutoScalingGroupsCommand).resolves(launchGroup('InService'));
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [runningInstance()] }] });
    ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: VOLUME_ID, Encrypted: true, KmsKeyId: KEY_A_EU }] });

    const result = await checkLaunch(withMode('auto-scaling'), COPY, launchState({ attempt: 2 }), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeVolumesCommand, { VolumeIds: [VOLUME_ID] });
    expect(asMock).toHaveReceivedCommandTimes(DescribeScalingActivitiesCommand, 0);
    expect(result).toEqual(launchState({ state: 'verified', instanceId: INSTANCE_ID, volumeId: VOLUME_ID, attempt: 2 }));
  });

  it('keeps waiting with the instance ID while the instance is still pending', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [runningInstance({ State: { Name: 'pending', Code: 0 } })] }] });

    const result = await checkLaunch(withMode('run-instances'), COPY, launchState({ mode: 'run-instances', instanceId: INSTANCE_ID }), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeVolumesCommand, 0);
    expect(result).toMatchObject({ state: 'pending', instanceId: INSTANCE_ID, attempt: 1, waitSeconds: 90 });
  });

  it.each([
    ['is not encrypted', { VolumeId: VOLUME_ID, Encrypted: false }, 'not encrypted'],
    ['is encrypted with another key', { VolumeId: VOLUME_ID, Encrypted: true, KmsKeyId: OTHER_KEY }, `encrypted with ${OTHER_KEY}`],
  ])('fails when the root volume %s', async (_, volume, expected) => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [runningInstance()] }] });
    ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [volume] });

    const error = await rejection(
      checkLaunch(withMode('run-instances'), COPY, launchState({ mode: 'run-instances', instanceId: INSTANCE_ID }), deps()),
    );

    expect(error.name).toBe('LaunchFailedError');
    expect(error.message).toContain(`root volume ${VOLUME_ID} of ${INSTANCE_ID} is ${expected}`);
    expect(error.message).toContain(`not with the target key ${KEY_A_EU}`);
  });

  it('returns a launch that is no longer pending unchanged without calling AWS', async () => {
    const verified = launchState({ state: 'verified', instanceId: INSTANCE_ID, volumeId: VOLUME_ID });
    expect(await checkLaunch(withMode('auto-scaling'), COPY, verified, deps())).toBe(verified);
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(asMock.calls()).toHaveLength(0);
  });
});

describe('cleanUpLaunchCheck', () => {
  it('deletes the group and the template and terminates every instance of the check', async () => {
    asMock.on(DeleteAutoScalingGroupCommand).resolves({});
    ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateName: NAME }] });
    ec2Mock.on(DeleteLaunchTemplateCommand).resolves({});
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: INSTANCE_ID }] }, { Instances: [{ InstanceId: 'i-0fedcba9876543210' }] }],
    });
    ec2Mock.on(TerminateInstancesCommand).resolves({});

    const result = await cleanUpLaunchCheck(withMode('auto-scaling'), deps());

    expect(asMock).toHaveReceivedCommandWith(DeleteAutoScalingGroupCommand, { AutoScalingGroupName: NAME, ForceDelete: true });
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteLaunchTemplateCommand, { LaunchTemplateName: NAME });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeInstancesCommand, {
      Filters: [
        { Name: 'tag:ami-pipeline:launch-check', Values: [NAME] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ],
    });
    expect(ec2Mock).toHaveReceivedCommandWith(TerminateInstancesCommand, { InstanceIds: [INSTANCE_ID, 'i-0fedcba9876543210'] });
    expect(result).toEqual({
      name: NAME,
      autoScalingGroupDeleted: true,
      launchTemplateDeleted: true,
      terminatedInstanceIds: [INSTANCE_ID, 'i-0fedcba9876543210'],
    });
  });

  it('succeeds when the group, the template and the instances are already gone', async () => {
    asMock
      .on(DeleteAutoScalingGroupCommand)
      .rejects(awsError('ValidationError', `AutoScalingGroup name not found - AutoScalingGroup '${NAME}' not found`));
    ec2Mock
      .on(DescribeLaunchTemplatesCommand)
      .rejects(awsError('InvalidLaunchTemplateName.NotFoundException', 'At least one of the launch templates specified in the request does not exist.'));
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });

    const result = await cleanUpLaunchCheck(withMode('auto-scaling'), deps());

    // The template is looked for first: the role may delete only tagged templates, and a missing one has no tags.
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeLaunchTemplatesCommand, { LaunchTemplateNames: [NAME] });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteLaunchTemplateCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(TerminateInstancesCommand, 0);
    expect(result).toEqual({ name: NAME, autoScalingGroupDeleted: false, launchTemplateDeleted: false, terminatedInstanceIds: [] });
  });

  it('throws AccessDeniedError when the target role may not delete the group', async () => {
    asMock
      .on(DeleteAutoScalingGroupCommand)
      .rejects(
        awsError(
          'AccessDenied',
          `User: ${ROLE_SESSION} is not authorized to perform: autoscaling:DeleteAutoScalingGroup on resource: arn:aws:autoscaling:eu-west-1:${ACCOUNT_A}:autoScalingGroup:*:autoScalingGroupName/${NAME} because no identity-based policy allows the autoscaling:DeleteAutoScalingGroup action`,
          403,
        ),
      );

    const error = await rejection(cleanUpLaunchCheck(withMode('auto-scaling'), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.retryable).toBe(false);
    expect(error.aws?.code).toBe('AccessDenied');
    expect(ec2Mock).toHaveReceivedCommandTimes(TerminateInstancesCommand, 0);
  });

  it('only terminates the instance in mode run-instances', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [{ InstanceId: INSTANCE_ID }] }] });
    ec2Mock.on(TerminateInstancesCommand).resolves({});

    const result = await cleanUpLaunchCheck(withMode('run-instances'), deps());

    expect(asMock.calls()).toHaveLength(0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteLaunchTemplateCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandWith(TerminateInstancesCommand, { InstanceIds: [INSTANCE_ID] });
    expect(result.terminatedInstanceIds).toEqual([INSTANCE_ID]);
  });

  it('sends nothing in mode none', async () => {
    const result = await cleanUpLaunchCheck(withMode('none'), deps());
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(asMock.calls()).toHaveLength(0);
    expect(result).toEqual({ name: NAME, autoScalingGroupDeleted: false, launchTemplateDeleted: false, terminatedInstanceIds: [] });
  });
});
