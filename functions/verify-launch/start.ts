/** StartLaunchCheck: the test instance (run-instances) or the Auto Scaling group of one and its launch template (auto-scaling). */
import { CreateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, DescribeSubnetsCommand, type EC2Client, RunInstancesCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import { launchWait } from '../shared/budget';
import { aws, LaunchFailedError } from '../shared/errors';
import { describeImage } from '../shared/images';
import { logger } from '../shared/logger';
import type { CopyRef, TargetItem } from '../shared/plan';
import { launchCheckName, MANAGED_BY, TAGS, tagList } from '../shared/tags';
import { targetClients, where } from '../shared/target';
import type { LaunchState, VerifyLaunchDeps } from './launch-state';

export function defaultInstanceType(architecture: string): string {
  return architecture === 'arm64' ? 't4g.micro' : 't3.micro';
}

async function chooseSubnet(ec2: EC2Client, item: TargetItem): Promise<string> {
  if (item.target.subnetId) return item.target.subnetId;
  const out = await aws(`Looking for a default subnet in ${where(item)}`, () =>
    ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] })),
  );
  const subnet = (out.Subnets ?? []).find((s) => s.State === 'available' || s.State === undefined)?.SubnetId;
  if (!subnet) {
    throw new LaunchFailedError(
      `No subnet for the launch check in ${where(item)}: the account has no default VPC there. ` +
        `Give verify.subnetIds.${item.target.region} (or this target's subnetIds), or set verify.mode to "none".`,
    );
  }
  return subnet;
}

export async function startLaunchCheck(
  item: TargetItem,
  copy: CopyRef,
  deps: VerifyLaunchDeps,
): Promise<LaunchState> {
  const now = deps.now();
  const base = {
    mode: item.settings.verify.mode,
    name: null,
    instanceId: null,
    instanceType: null,
    subnetId: null,
    volumeId: null,
    attempt: 0,
    waitSeconds: 0,
    startedAt: now.toISOString(),
    deadline: new Date(now.getTime() + item.settings.verify.timeoutMinutes * 60_000).toISOString(),
    checkedAt: now.toISOString(),
  };
  if (item.settings.verify.mode === 'none') return { ...base, state: 'skipped' };

  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  const image = await describeImage(ec2, copy.imageId, `Describing copy ${copy.imageId} in ${where(item)}`);
  const rootName = image?.RootDeviceName ?? item.source.rootDeviceName;
  const root = image?.BlockDeviceMappings?.find((m) => m.DeviceName === rootName);
  const instanceType = item.settings.verify.instanceType ?? defaultInstanceType(image?.Architecture ?? item.source.architecture);
  const subnetId = await chooseSubnet(ec2, item);
  const name = launchCheckName(item.executionName, item.target.accountId, item.target.region);
  const tags = tagList({
    Name: name,
    [TAGS.launchCheck]: name,
    [TAGS.execution]: item.executionName,
    [TAGS.sourceImage]: item.source.imageId,
    [TAGS.managedBy]: MANAGED_BY,
  });
  // Map the root device explicitly with the target key: the volume must be encrypted with it, not the account default.
  const blockDeviceMappings = [
    {
      DeviceName: rootName,
      Ebs: {
        Encrypted: true,
        KmsKeyId: copy.kmsKeyArn,
        VolumeSize: root?.Ebs?.VolumeSize,
        VolumeType: 'gp3' as const,
        DeleteOnTermination: true,
      },
    },
  ];

  if (item.settings.verify.mode === 'run-instances') {
    const out = await aws(
      `Launching a test instance of ${copy.imageId} in ${where(item)}`,
      () =>
        ec2.send(
          new RunInstancesCommand({
            ImageId: copy.imageId,
            InstanceType: instanceType as _InstanceType,
            MinCount: 1,
            MaxCount: 1,
            SubnetId: subnetId,
            BlockDeviceMappings: blockDeviceMappings,
            MetadataOptions: { HttpTokens: 'required' },
            ClientToken: name,
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tags },
              { ResourceType: 'volume', Tags: tags },
            ],
          }),
        ),
      'The target role needs ec2:RunInstances for this image, subnet and key.',
    );
    const instanceId = out.Instances?.[0]?.InstanceId ?? null;
    logger.info('Launch check started', { mode: 'run-instances', instanceId, imageId: copy.imageId });
    return { ...base, state: 'pending', name, instanceId, instanceType, subnetId, waitSeconds: launchWait(0) };
  }

  await aws(
    `Creating launch template ${name} in ${where(item)}`,
    () =>
      ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: name,
          ClientToken: name,
          LaunchTemplateData: {
            ImageId: copy.imageId,
            InstanceType: instanceType as _InstanceType,
            BlockDeviceMappings: blockDeviceMappings,
            MetadataOptions: { HttpTokens: 'required' },
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tags },
              { ResourceType: 'volume', Tags: tags },
            ],
          },
          TagSpecifications: [{ ResourceType: 'launch-template', Tags: tags }],
        }),
      ),
    // A retried start finds the template it made.
    { fix: 'The target role needs ec2:CreateLaunchTemplate.', absentOn: ['InvalidLaunchTemplateName.AlreadyExistsException'] },
  );
  await aws(
    `Creating Auto Scaling group ${name} in ${where(item)}`,
    () =>
      clients.autoScaling(item.target.region).send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          LaunchTemplate: { LaunchTemplateName: name, Version: '$Latest' },
          MinSize: 1,
          MaxSize: 1,
          DesiredCapacity: 1,
          VPCZoneIdentifier: subnetId,
          Tags: tags.map((t) => ({ ...t, PropagateAtLaunch: false })),
        }),
      ),
    {
      fix: 'The target role needs autoscaling:CreateAutoScalingGroup and ec2:RunInstances (Auto Scaling launches as the caller), and the account the Auto Scaling service-linked role.',
      absentOn: ['AlreadyExists'],
    },
  );
  logger.info('Launch check started', { mode: 'auto-scaling', autoScalingGroup: name, imageId: copy.imageId });
  return { ...base, state: 'pending', name, instanceType, subnetId, waitSeconds: launchWait(0) };
}

