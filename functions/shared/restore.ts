/**
 * Undo a retirement in its grace period, for the day a new image turns out bad (`ami-pipeline restore`): inside the
 * target account and region (through the target role), EnableImage on a disabled copy the pipeline made, drop its
 * retire-after tag, point the SSM parameter back at it, and move the pipeline's deregistration protection to it
 * from the copy the parameter pointed at. Retention then keeps it as the parameter's image.
 */
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageCommand,
  EnableImageDeregistrationProtectionCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import type { Clients } from './client-factory';
import { aws, PARAMETER_ABSENT, PublishFailedError } from './errors';
import { describeImage } from './images';
import { MANAGED_BY, TAGS } from './tags';

export interface RestoreRequest {
  accountId: string;
  region: string;
  imageId: string;
  /** The SSM parameter to point back at the copy; null: none. */
  parameterName: string | null;
  /** Protect the restored copy (publish.protect). */
  protect: boolean | 'with-cooldown';
}

export interface RestoreResult {
  imageId: string;
  /** The image's state before: disabled (enabled again) or available (left as it was). */
  was: string;
  parameter: { name: string; previous: string | null; version: number | null } | null;
  protection: { imageId: string | null; movedFrom: string | null };
}

const FIX = 'The target role needs ec2:DescribeImages, ec2:EnableImage, ec2:DeleteTags, ec2:CreateTags, the deregistration protection actions and ssm:PutParameter (templates/target-account.yml).';

export async function restoreCopy(request: RestoreRequest, clients: Clients): Promise<RestoreResult> {
  const { accountId, region, imageId, parameterName, protect } = request;
  const where = `${accountId}/${region}`;
  const ec2 = clients.ec2(region);
  const image = await describeImage(ec2, imageId, `Describing ${imageId} in ${where}`, { fix: FIX, includeDisabled: true });
  if (!image || image.State === 'deregistered') {
    throw new PublishFailedError(`${imageId} is not in ${where} (or is deregistered already): only a disabled copy in its grace period can be restored.`);
  }
  if (!image.Tags?.some((t) => t.Key === TAGS.managedBy && t.Value === MANAGED_BY)) {
    throw new PublishFailedError(`${imageId} in ${where} was not made by encrypted-ami-pipeline (no ${TAGS.managedBy} tag): restore only works on the pipeline's copies.`);
  }
  if (image.State !== 'disabled' && image.State !== 'available') {
    throw new PublishFailedError(`${imageId} in ${where} is ${image.State ?? 'in an unknown state'}; only a disabled or available copy can be restored.`);
  }
  const was = image.State;
  await aws(
    `Enabling ${imageId} in ${where}`,
    async () => {
      if (was === 'disabled') await ec2.send(new EnableImageCommand({ ImageId: imageId }));
      if (image.Tags?.some((t) => t.Key === TAGS.retireAfter)) await ec2.send(new DeleteTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.retireAfter }] }));
    },
    FIX,
  );

  let parameter: RestoreResult['parameter'] = null;
  if (parameterName) {
    const ssm = clients.ssm(region);
    const read = async () => (await ssm.send(new GetParameterCommand({ Name: parameterName }))).Parameter?.Value ?? null;
    const previous = (await aws(`Reading parameter ${parameterName} in ${where}`, read, { fix: FIX, absentOn: PARAMETER_ABSENT })) ?? null;
    const out = await aws(
      `Pointing parameter ${parameterName} at ${imageId} in ${where}`,
      () => ssm.send(new PutParameterCommand({ Name: parameterName, Value: imageId, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true })),
      FIX,
    );
    parameter = { name: parameterName, previous, version: out.Version ?? null };
  }

  const protection: RestoreResult['protection'] = { imageId: null, movedFrom: null };
  if (protect !== false) {
    await aws(
      `Protecting ${imageId} in ${where}`,
      async () => {
        await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.protectedBy, Value: protect === 'with-cooldown' ? 'with-cooldown' : 'true' }] }));
        await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId, WithCooldown: protect === 'with-cooldown' }));
      },
      FIX,
    );
    protection.imageId = imageId;
  }
  const previous = parameter?.previous;
  if (previous && previous !== imageId) {
    const before = await describeImage(ec2, previous, `Describing ${previous} in ${where}`, { fix: FIX, includeDisabled: true });
    if (before?.Tags?.some((t) => t.Key === TAGS.protectedBy)) {
      await aws(
        `Moving deregistration protection off ${previous} in ${where}`,
        async () => {
          await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: previous }));
          await ec2.send(new DeleteTagsCommand({ Resources: [previous], Tags: [{ Key: TAGS.protectedBy }] }));
        },
        FIX,
      );
      protection.movedFrom = previous;
    }
  }
  return { imageId, was, parameter, protection };
}
