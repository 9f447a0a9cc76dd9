/**
 * Removing what a launch check made in a target (its Auto Scaling group, launch template and instances), found by
 * the name derived from the run and the target (tags.ts launchCheckName). Idempotent. CleanUpLaunchCheck, the
 * janitor and `ami-pipeline cleanup` use it.
 */
import { DeleteAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { DeleteLaunchTemplateCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import type { ClientFactory } from './client-factory';
import { aws, type CodePattern, toPipelineError } from './errors';
import { logger } from './logger';
import type { TargetItem } from './plan';
import { launchCheckName, TAGS } from './tags';
import { targetClients, where } from './target';
import type { LaunchCheckCleanup } from './manifest-schema';

export type LaunchCheckTarget = Pick<TargetItem, 'executionName' | 'target' | 'settings'>;

/** EC2's answers for a launch template that is not there. */
const TEMPLATE_ABSENT: readonly CodePattern[] = ['InvalidLaunchTemplateName.*', 'InvalidLaunchTemplateId.*'];

/** What the launch check's cleanup removed (its schema is the manifest's). */
export type CleanupResult = LaunchCheckCleanup;

export async function cleanUpLaunchCheck(item: LaunchCheckTarget, deps: { clients: ClientFactory }): Promise<CleanupResult> {
  const name = launchCheckName(item.executionName, item.target.accountId, item.target.region);
  const result: CleanupResult = { name, autoScalingGroupDeleted: false, launchTemplateDeleted: false, terminatedInstanceIds: [] };
  if (item.settings.verify.mode === 'none') return result;
  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  if (item.settings.verify.mode === 'auto-scaling') {
    const action = `Deleting Auto Scaling group ${name} in ${where(item)}`;
    // Already gone, or being deleted by an earlier attempt: either way nothing of ours stays.
    result.autoScalingGroupDeleted = await aws(
      action,
      async () => {
        await clients.autoScaling(item.target.region).send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: name, ForceDelete: true }));
        return true;
      },
      {
        on: {
          ScalingActivityInProgress: () => false,
          ValidationError: (detail, error) => {
            if (/not found|does not exist/i.test(detail.message)) return false;
            throw toPipelineError(error, action);
          },
        },
      },
    );
    // Look first: the target role may delete only launch templates tagged as the pipeline's (docs/iam.md), and
    // one that was never made has no tags to match.
    const found = await aws(`Looking for launch template ${name} in ${where(item)}`, () => ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] })), {
      absentOn: TEMPLATE_ABSENT,
    });
    if ((found?.LaunchTemplates?.length ?? 0) > 0) {
      const deleted = await aws(`Deleting launch template ${name} in ${where(item)}`, () => ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: name })), {
        absentOn: TEMPLATE_ABSENT,
      });
      result.launchTemplateDeleted = deleted !== undefined;
    }
  }
  const described = await aws(`Looking for test instances ${name} in ${where(item)}`, () =>
    ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAGS.launchCheck}`, Values: [name] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
      }),
    ),
  );
  const instanceIds = (described.Reservations ?? []).flatMap((r) => (r.Instances ?? []).flatMap((i) => (i.InstanceId ? [i.InstanceId] : [])));
  if (instanceIds.length > 0) {
    await aws(`Terminating test instances ${instanceIds.join(', ')} in ${where(item)}`, () =>
      ec2.send(new TerminateInstancesCommand({ InstanceIds: instanceIds })),
    );
  }
  result.terminatedInstanceIds = instanceIds;
  logger.info('Launch check cleaned up', { ...result });
  return result;
}

