/** GetImageState: the copy's state for the wait loop; once available tagged, its provenance checked, its deprecation set. */
import { DeregisterImageCommand, DescribeSnapshotsCommand, type EC2Client, EnableImageDeprecationCommand, CreateTagsCommand, type Image } from '@aws-sdk/client-ec2';
import { approachWindow, COPY_WAIT, copyNearlyDone, nextCopyWait } from '../shared/budget';
import { aws, ImageCopyFailedError, ImageNotYetVisibleError, ProvenanceMismatchError } from '../shared/errors';
import { describeImage, snapshotIdsOf } from '../shared/images';
import { logger } from '../shared/logger';
import type { TargetItem } from '../shared/plan';
import { keepLooking } from '../shared/poll';
import { TAGS, tagList } from '../shared/tags';
import { targetClients, where } from '../shared/target';
import { provenanceTags, type CopyEncryptDeps, type CopyState } from './copy-state';

async function tagCopy(ec2: EC2Client, item: TargetItem, image: Image, kmsKeyArn: string): Promise<void> {
  // TagSpecifications of CopyImage tag the new image and snapshots; tagging again once available makes sure
  // re-runs find the copy by its tags whatever the endpoint did with them (CreateTags is idempotent).
  const resources = [image.ImageId ?? '', ...snapshotIdsOf(image)];
  const wanted = provenanceTags(item, kmsKeyArn);
  const have = new Map((image.Tags ?? []).map((t) => [t.Key, t.Value]));
  // A copy that was not visible yet when this run started it has no execution tag: it is this run's.
  if (!have.has(TAGS.execution)) wanted[TAGS.execution] = item.executionName;
  if (Object.entries(wanted).every(([k, v]) => have.get(k) === v) && resources.length === 1) return;
  await aws(`Tagging copy ${image.ImageId} in ${where(item)}`, () =>
    ec2.send(new CreateTagsCommand({ Resources: resources, Tags: tagList(wanted) })),
  );
}

/** The copy must descend from the run's source (AMI ancestry: SourceImageId, SourceImageRegion); else nothing more is done with it. */
export function checkProvenance(item: TargetItem, image: Image): void {
  if (image.SourceImageId === item.source.imageId && image.SourceImageRegion === item.source.region) return;
  throw new ProvenanceMismatchError(
    `Copy ${image.ImageId ?? ''} in ${where(item)} reports source ${image.SourceImageId ?? 'none'} in ${image.SourceImageRegion ?? 'no region'}, ` +
      `not the run's source ${item.source.imageId} in ${item.source.region}. It is not granted, launched or published: ` +
      'check who else copies into this account (a copy tagged with this source but made from another image), deregister that copy, and run again.',
    { aws: { code: 'ProvenanceMismatch', message: `SourceImageId ${image.SourceImageId ?? 'none'}, SourceImageRegion ${image.SourceImageRegion ?? 'none'}` } },
  );
}

/** EnableImageDeprecation at copy.deprecateAfterDays from now, unless the copy already has a deprecation time. */
async function deprecate(ec2: EC2Client, item: TargetItem, image: Image, now: Date): Promise<void> {
  const days = item.settings.copy.deprecateAfterDays;
  if (days === null || image.DeprecationTime) return;
  const deprecateAt = new Date(now.getTime() + days * 86_400_000);
  await aws(
    `Setting the deprecation of copy ${image.ImageId ?? ''} in ${where(item)}`,
    () => ec2.send(new EnableImageDeprecationCommand({ ImageId: image.ImageId, DeprecateAt: deprecateAt })),
    'The target role needs ec2:EnableImageDeprecation on its images (templates/target-account.yml).',
  );
  logger.info('Copy deprecation set', { imageId: image.ImageId, deprecateAt: deprecateAt.toISOString() });
}

/** The copy as DescribeImages sees it, and its snapshots' least progress (integer %; null when not known yet). */
async function lookAtCopy(ec2: EC2Client, item: TargetItem, copy: CopyState): Promise<{ image: Image; percent: number | null }> {
  const image = await describeImage(ec2, copy.imageId, `Describing copy ${copy.imageId} in ${where(item)}`);
  if (!image) {
    // A new copy can take a moment to become visible to DescribeImages.
    throw new ImageNotYetVisibleError(`Copy ${copy.imageId} is not visible in ${where(item)} yet`);
  }
  if (image.State !== 'pending') return { image, percent: null };
  const snapshotIds = snapshotIdsOf(image);
  if (snapshotIds.length === 0) return { image, percent: null };
  const described = await aws(`Reading the progress of copy ${copy.imageId} in ${where(item)}`, () => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })), {
    // The copy's snapshots can lag behind the image: progress is then simply not known yet.
    absentOn: ['InvalidSnapshot.*'],
    on: {
      // A target role from before progress was read (templates/target-account.yml without ec2:DescribeSnapshots):
      // wait without it rather than fail the copy.
      UnauthorizedOperation: () => {
        logger.warn('No ec2:DescribeSnapshots in the target role: waiting without the copy progress; update templates/target-account.yml', { imageId: copy.imageId });
        return undefined;
      },
    },
  });
  if (!described) return { image, percent: null };
  const snapshots = described.Snapshots ?? [];
  const percents = snapshots.map((s) => Number.parseInt(s.Progress ?? '', 10)).filter((p) => Number.isFinite(p));
  return { image, percent: percents.length === snapshotIds.length ? Math.min(...percents) : null };
}

export async function copyStatus(item: TargetItem, copy: CopyState, deps: CopyEncryptDeps): Promise<CopyState> {
  const ec2 = targetClients(item, deps).ec2(item.target.region);
  const started = Date.parse(copy.startedAt);
  const deadline = Date.parse(copy.deadline);
  const elapsed = () => (deps.now().getTime() - started) / 1000;
  let look = await lookAtCopy(ec2, item, copy);
  const approach = deps.approachSeconds ?? approachWindow(elapsed());
  const approached = look.image.State === 'pending' && approach > 0 && copyNearlyDone(elapsed(), look.percent);
  if (approached) {
    // It may be done within the approach: keep looking here, one invocation instead of more trips round the loop.
    const until = Math.min(deps.now().getTime() + approach * 1000, deadline);
    look = await keepLooking(look, { pending: (l) => l.image.State === 'pending', until, pollSeconds: COPY_WAIT.approachPoll }, deps, () =>
      lookAtCopy(ec2, item, copy),
    );
  }
  const { image, percent } = look;
  const now = deps.now();
  const state = image.State ?? 'unknown';
  const next: CopyState = { ...copy, state, progress: percent, checkedAt: now.toISOString() };
  if (state === 'available') {
    await tagCopy(ec2, item, image, copy.kmsKeyArn);
    checkProvenance(item, image);
    await deprecate(ec2, item, image, now);
    logger.info('Image copy available', { imageId: copy.imageId, attempt: copy.attempt });
    return { ...next, progress: 100, waitSeconds: 0 };
  }
  if (state === 'pending') {
    const wait = nextCopyWait({ elapsed: elapsed(), percent, previousWait: copy.waitSeconds, untilDeadline: (deadline - now.getTime()) / 1000, approached });
    return { ...next, attempt: copy.attempt + 1, waitSeconds: wait };
  }
  const reason = image.StateReason ? `${image.StateReason.Code ?? ''}: ${image.StateReason.Message ?? ''}` : 'no reason given';
  if (state === 'failed') {
    await aws(`Deregistering failed copy ${copy.imageId} in ${where(item)}`, () =>
      ec2.send(new DeregisterImageCommand({ ImageId: copy.imageId, DeleteAssociatedSnapshots: true })),
    );
  }
  throw new ImageCopyFailedError(
    `Copy ${copy.imageId} of ${item.source.imageId} in ${where(item)} is ${state} (${reason}). ` +
      `Check that KMS key ${copy.kmsKeyArn} is enabled and that its policy lets the target role and EC2 use it ` +
      '(kms:CreateGrant, kms:Decrypt, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*); an encrypted source also needs its own key shared with this account.',
    { aws: { code: image.StateReason?.Code ?? state, message: image.StateReason?.Message ?? reason } },
  );
}

