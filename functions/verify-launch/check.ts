/** GetLaunchState: whether the test instance runs, and on a root volume encrypted with the target key. */
import { type AutoScalingClient, DescribeAutoScalingGroupsCommand, DescribeScalingActivitiesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, DescribeVolumesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { LAUNCH_WAIT, launchWait } from '../shared/budget';
import { aws, LaunchFailedError } from '../shared/errors';
import { logger } from '../shared/logger';
import type { CopyRef, TargetItem } from '../shared/plan';
import { keepLooking } from '../shared/poll';
import { targetClients, where } from '../shared/target';
import { launchFailure, type LaunchState, type VerifyLaunchDeps } from './launch-state';

async function describeInstance(ec2: EC2Client, item: TargetItem, instanceId: string): Promise<Instance | undefined> {
  const out = await aws(`Describing test instance ${instanceId} in ${where(item)}`, () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })), {
    absentOn: ['InvalidInstanceID.NotFound'],
  });
  return out?.Reservations?.[0]?.Instances?.[0];
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
  copy: CopyRef,
  launch: LaunchState,
  deps: VerifyLaunchDeps,
): Promise<LaunchState> {
  const until = Math.min(deps.now().getTime() + (deps.approachSeconds ?? LAUNCH_WAIT.approach) * 1000, Date.parse(launch.deadline));
  const first = await checkLaunchOnce(item, copy, launch, deps);
  return keepLooking(first, { pending: (r) => r.state === 'pending', until, pollSeconds: LAUNCH_WAIT.approachPoll }, deps, (last) =>
    checkLaunchOnce(item, copy, { ...launch, instanceId: last.instanceId }, deps),
  );
}

async function checkLaunchOnce(
  item: TargetItem,
  copy: CopyRef,
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

