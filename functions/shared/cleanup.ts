/**
 * What an execution leaves in a target when it ends without its own cleanup (stopped, timed out, failed outside a
 * Catch, or a local run interrupted): its launch check (group, template, instances) and copies that ended `failed`.
 * Idempotent; never throws for one target, so the others are still cleaned: a target's error comes back as
 * { name, message }. The janitor, the CLI's interrupt handler and `ami-pipeline cleanup` use it.
 */
import { DeregisterImageCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { ClientFactory } from './client-factory';
import { aws, PipelineError } from './errors';
import { cleanUpLaunchCheck, type LaunchCheckTarget } from './launch-check';
import { TAGS } from './tags';
import { targetClients } from './target';
import type { TargetCleanup } from './manifest-schema';

export type { TargetCleanup };

export function errorOf(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/** Deregister the copies `executionName` made of `sourceImageId` in the target that ended `failed`. */
export async function removeFailedCopies(item: LaunchCheckTarget, sourceImageId: string, deps: { clients: ClientFactory }): Promise<string[]> {
  const ec2 = targetClients(item, deps).ec2(item.target.region);
  const where = `${item.target.accountId}/${item.target.region}`;
  const out = await aws(`Looking for failed copies of ${sourceImageId} in ${where}`, () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [
          { Name: `tag:${TAGS.sourceImage}`, Values: [sourceImageId] },
          { Name: `tag:${TAGS.execution}`, Values: [item.executionName] },
          { Name: 'state', Values: ['failed'] },
        ],
      }),
    ),
  );
  const ids = (out.Images ?? []).flatMap((i) => (i.ImageId && i.State === 'failed' ? [i.ImageId] : []));
  for (const imageId of ids) {
    await aws(`Deregistering failed copy ${imageId} in ${where}`, () => ec2.send(new DeregisterImageCommand({ ImageId: imageId })));
  }
  return ids;
}

export async function cleanUpTarget(item: LaunchCheckTarget, sourceImageId: string | null, deps: { clients: ClientFactory }): Promise<TargetCleanup> {
  const result: TargetCleanup = { accountId: item.target.accountId, region: item.target.region, launchCheck: null, deregistered: [], error: null };
  try {
    result.launchCheck = await cleanUpLaunchCheck(item, deps);
    if (sourceImageId) result.deregistered = await removeFailedCopies(item, sourceImageId, deps);
  } catch (error) {
    result.error = errorOf(error);
    if (!(error instanceof PipelineError)) result.error = { name: 'AwsRequestFailedError', message: result.error.message };
  }
  return result;
}
