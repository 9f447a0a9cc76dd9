/** FindTargetCopy: on the failure path, the copy this run made in the target (if any), a failed one deregistered. */
import { DeregisterImageCommand, type Image } from '@aws-sdk/client-ec2';
import { AccessDeniedError, aws, TargetRoleNotAssumableError, toPipelineError } from '../shared/errors';
import { tagOf } from '../shared/images';
import type { TargetItem } from '../shared/plan';
import { TAGS } from '../shared/tags';
import { targetClients, where } from '../shared/target';
import { findCopies, NO_COPY, type CopyEncryptDeps, type FoundCopy } from './copy-state';

export async function findCopy(item: TargetItem, deps: CopyEncryptDeps): Promise<FoundCopy> {
  let images: Image[];
  try {
    const ec2 = targetClients(item, deps).ec2(item.target.region);
    images = await findCopies(ec2, item, [{ Name: `tag:${TAGS.execution}`, Values: [item.executionName] }]);
    // A copy this run already deregistered (it failed) is still reported, so the manifest names it.
    const copy = images.find((i) => i.State !== 'deregistered') ?? images[0];
    if (!copy?.ImageId) return NO_COPY;
    if (copy.State === 'deregistered') return { imageId: copy.ImageId, state: 'deregistered', kmsKeyArn: null, deregistered: true };
    const kmsKeyArn = tagOf(copy, TAGS.kmsKey) ?? null;
    if (copy.State === 'failed') {
      await aws(`Deregistering failed copy ${copy.ImageId}`, () =>
        ec2.send(new DeregisterImageCommand({ ImageId: copy.ImageId, DeleteAssociatedSnapshots: true })),
      );
      return { imageId: copy.ImageId, state: 'failed', kmsKeyArn, deregistered: true };
    }
    return { imageId: copy.ImageId, state: copy.State ?? null, kmsKeyArn, deregistered: false };
  } catch (error) {
    // The account may be unreachable (the reason the target failed): there is then nothing this run made there.
    const e = toPipelineError(error, `Looking for the copy made in ${where(item)}`);
    if (e instanceof TargetRoleNotAssumableError || e instanceof AccessDeniedError) return NO_COPY;
    throw e;
  }
}

