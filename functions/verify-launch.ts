/**
 * StartLaunchCheck / GetLaunchState / CleanUpLaunchCheck: proves the copy boots with its root volume encrypted by
 * the target key, inside the target account.
 * - start: mode "auto-scaling" (default, the path that needs the Auto Scaling grant) makes a launch template and an
 *   Auto Scaling group of one; mode "run-instances" launches one instance; mode "none" returns `skipped`.
 *   Names and instance tags derive from execution and target, so cleanup finds them on every path.
 * - check: pending until the instance runs; then checks the root volume's encryption and key. A launch that ends
 *   terminated (StateReason Client.InternalError, Client.InvalidKMSKey.InvalidState) is LaunchFailedError.
 * - cleanup: deletes the group (ForceDelete) and template and terminates every instance of the check. Idempotent.
 * Throws LaunchFailedError, AccessDeniedError (terminal); throttling and 5xx (retryable).
 */
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Instance,
  type _InstanceType,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import * as z from 'zod';
import { LAUNCH_WAIT, launchWait } from './shared/budget';
import { keepLooking, type Clock } from './shared/poll';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, awsCode, LaunchFailedError, toPipelineError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { launchCheckName, MANAGED_BY, TAGS, tagList } from './shared/tags';
import { cleanUpLaunchCheck, type CleanupResult } from './shared/launch-check';
import { targetClients } from './shared/target';

export { cleanUpLaunchCheck, type CleanupResult };

export const launchStateSchema = z.object({
  mode: z.enum(['auto-scaling', 'run-instances', 'none']),
  state: z.enum(['pending', 'verified', 'skipped']),
  name: z.string().nullable(),
  instanceId: z.string().nullable(),
  instanceType: z.string().nullable(),
  subnetId: z.string().nullable(),
  volumeId: z.string().nullable(),
  attempt: z.number().int(),
  waitSeconds: z.number().int(),
  startedAt: z.string(),
  deadline: z.string(),
  checkedAt: z.string(),
});
export type LaunchState = z.infer<typeof launchStateSchema>;

const copyRefSchema = z.object({ imageId: z.string(), kmsKeyArn: z.string() });

export const verifyLaunchEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), item: targetItemSchema, copy: copyRefSchema }),
  z.object({ action: z.literal('check'), item: targetItemSchema, copy: copyRefSchema, launch: launchStateSchema }),
  z.object({ action: z.literal('cleanup'), item: targetItemSchema }),
]);
export type VerifyLaunchEvent = z.infer<typeof verifyLaunchEventSchema>;

/** `sleep`: how the check waits between its looks at a starting instance (default: a timer). */
export interface VerifyLaunchDeps extends Clock {
  clients: ClientFactory;
  /** How long one check keeps looking (default LAUNCH_WAIT.approach; 0: one look per check). */
  approachSeconds?: number;
}
export const defaultDeps: VerifyLaunchDeps = { clients: clientFactory({ ec2: EC2Client, autoScaling: AutoScalingClient }), now: () => new Date() };

const where = (item: TargetItem) => `${item.target.accountId}/${item.target.region}`;

export function defaultInstanceType(architecture: string): string {
  return architecture === 'arm64' ? 't4g.micro' : 't3.micro';
}

const KEY_FIX =
  'The instance could not use the KMS key of its root volume. Check that the key is enabled, that its policy lets the ' +
  'account use it, and that the grant for AWSServiceRoleForAutoScaling exists (CreateKmsGrant) and has propagated; then run again.';

function launchFailure(item: TargetItem, what: string, code: string, message: string): LaunchFailedError {
  const fix = /KMS|InternalError|Client error on launch/i.test(`${code} ${message}`)
    ? KEY_FIX
    : 'Check the instance type, the subnet and the account limits, then run again.';
  return new LaunchFailedError(`Launch check in ${where(item)}: ${what} (${code}: ${message}). ${fix}`, { aws: { code, message } });
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
  copy: { imageId: string; kmsKeyArn: string },
  deps: VerifyLaunchDeps = defaultDeps,
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
  const image = (
    await aws(`Describing copy ${copy.imageId} in ${where(item)}`, () => ec2.send(new DescribeImagesCommand({ ImageIds: [copy.imageId] })))
  ).Images?.[0];
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
    'The target role needs ec2:CreateLaunchTemplate.',
  ).catch((error: unknown) => {
    if (awsCode(error) !== 'InvalidLaunchTemplateName.AlreadyExistsException') throw error;
  });
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
    'The target role needs autoscaling:CreateAutoScalingGroup and ec2:RunInstances (Auto Scaling launches as the caller), and the account the Auto Scaling service-linked role.',
  ).catch((error: unknown) => {
    if (awsCode(error) !== 'AlreadyExists') throw error;
  });
  logger.info('Launch check started', { mode: 'auto-scaling', autoScalingGroup: name, imageId: copy.imageId });
  return { ...base, state: 'pending', name, instanceType, subnetId, waitSeconds: launchWait(0) };
}

async function describeInstance(ec2: EC2Client, item: TargetItem, instanceId: string): Promise<Instance | undefined> {
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.[0]?.Instances?.[0];
  } catch (error) {
    if (awsCode(error) === 'InvalidInstanceID.NotFound') return undefined;
    throw toPipelineError(error, `Describing test instance ${instanceId} in ${where(item)}`);
  }
}

/** Failed scaling activities explain a group that never got an instance (the write-up's Client.InternalError). */
async function failedActivity(autoScaling: AutoScalingClient, item: TargetItem, name: string): Promise<string | undefined> {
  const out = await aws(`Reading the scaling activities of ${name} in ${where(item)}`, () =>
    autoScaling.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: name, MaxRecords: 10 })),
  );
  const failed = (out.Activities ?? []).find((a) => a.StatusCode === 'Failed' || a.StatusCode === 'Cancelled');
  return failed ? (failed.StatusMessage ?? failed.Description ?? 'the launch failed') : undefined;
}

/**
 * Look at the test instance, and keep looking every LAUNCH_WAIT.approachPoll seconds for up to LAUNCH_WAIT.approach
 * (within the deadline) while it is still starting: instances boot in about a minute, so one invocation usually
 * sees it through instead of several trips round the loop.
 */
export async function checkLaunch(
  item: TargetItem,
  copy: { imageId: string; kmsKeyArn: string },
  launch: LaunchState,
  deps: VerifyLaunchDeps = defaultDeps,
): Promise<LaunchState> {
  const until = Math.min(deps.now().getTime() + (deps.approachSeconds ?? LAUNCH_WAIT.approach) * 1000, Date.parse(launch.deadline));
  const first = await checkLaunchOnce(item, copy, launch, deps);
  return keepLooking(first, { pending: (r) => r.state === 'pending', until, pollSeconds: LAUNCH_WAIT.approachPoll }, deps, (last) =>
    checkLaunchOnce(item, copy, { ...launch, instanceId: last.instanceId }, deps),
  );
}

async function checkLaunchOnce(
  item: TargetItem,
  copy: { imageId: string; kmsKeyArn: string },
  launch: LaunchState,
  deps: VerifyLaunchDeps,
): Promise<LaunchState> {
  if (launch.state !== 'pending') return launch;
  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  const now = deps.now();
  const pending = (): LaunchState => ({
    ...launch,
    attempt: launch.attempt + 1,
    waitSeconds: launchWait(launch.attempt + 1),
    checkedAt: now.toISOString(),
  });

  let instanceId = launch.instanceId;
  if (launch.mode === 'auto-scaling' && launch.name) {
    const autoScaling = clients.autoScaling(item.target.region);
    const groups = await aws(`Describing Auto Scaling group ${launch.name} in ${where(item)}`, () =>
      autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [launch.name ?? ''] })),
    );
    const member = groups.AutoScalingGroups?.[0]?.Instances?.find((i) => i.LifecycleState === 'InService') ??
      groups.AutoScalingGroups?.[0]?.Instances?.[0];
    if (!member?.InstanceId || member.LifecycleState !== 'InService') {
      const failure = await failedActivity(autoScaling, item, launch.name);
      if (failure) {
        const code = /Client\.[\w.]+/.exec(failure)?.[0] ?? 'AutoScaling.LaunchFailed';
        throw launchFailure(item, `the Auto Scaling group could not launch ${copy.imageId}`, code, failure);
      }
      return pending();
    }
    instanceId = member.InstanceId;
  }
  if (!instanceId) return pending();

  const instance = await describeInstance(ec2, item, instanceId);
  const state = instance?.State?.Name ?? 'pending';
  if (state === 'shutting-down' || state === 'terminated' || state === 'stopping' || state === 'stopped') {
    throw launchFailure(
      item,
      `test instance ${instanceId} of ${copy.imageId} went ${state}`,
      instance?.StateReason?.Code ?? 'Unknown',
      instance?.StateReason?.Message ?? 'no state reason',
    );
  }
  if (state !== 'running') return { ...pending(), instanceId };

  const rootName = instance?.RootDeviceName;
  const volumeId = instance?.BlockDeviceMappings?.find((m) => m.DeviceName === rootName)?.Ebs?.VolumeId ??
    instance?.BlockDeviceMappings?.[0]?.Ebs?.VolumeId;
  if (!volumeId) return { ...pending(), instanceId };
  const volume = (
    await aws(`Describing root volume ${volumeId} in ${where(item)}`, () => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })))
  ).Volumes?.[0];
  if (!volume?.Encrypted || volume.KmsKeyId !== copy.kmsKeyArn) {
    throw new LaunchFailedError(
      `Launch check in ${where(item)}: root volume ${volumeId} of ${instanceId} is ` +
        (volume?.Encrypted ? `encrypted with ${volume.KmsKeyId ?? 'an unknown key'}` : 'not encrypted') +
        `, not with the target key ${copy.kmsKeyArn}. Check the copy's encryption and the account's EBS default key.`,
    );
  }
  logger.info('Launch verified', { instanceId, volumeId, kmsKeyArn: copy.kmsKeyArn });
  return { ...launch, state: 'verified', instanceId, volumeId, checkedAt: now.toISOString() };
}

export async function verifyLaunch(event: VerifyLaunchEvent, deps: VerifyLaunchDeps = defaultDeps): Promise<LaunchState | CleanupResult> {
  switch (event.action) {
    case 'start':
      return startLaunchCheck(event.item, event.copy, deps);
    case 'check':
      return checkLaunch(event.item, event.copy, event.launch, deps);
    case 'cleanup':
      return cleanUpLaunchCheck(event.item, deps);
  }
}

export const makeHandler = (deps: VerifyLaunchDeps = defaultDeps) =>
  lambdaHandler('VerifyLaunch', itemLogContext, (event) =>
  verifyLaunch(parsePayload(verifyLaunchEventSchema, event, 'event'), deps),
);

export const handler = makeHandler();
