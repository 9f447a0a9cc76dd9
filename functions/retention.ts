/**
 * States: ApplyRetention. Serverless function: retention.
 * ApplyRetention: after PublishImage, inside the target account and region (through the target role), keeps the
 * newest `retention.keep` verified copies of the lineage and retires the others. The lineage is the one PublishImage
 * tagged the copy with (else retention.lineage, else the expanded parameter name); without one nothing is looked at
 * and the result says `skipped`.
 * - Candidates are this account's available and disabled images tagged managed-by=encrypted-ami-pipeline and with the
 *   lineage, so an image the pipeline did not create is never listed, let alone retired.
 * - The new copy always takes one of the `keep` places; the other places go to the newest available copies tagged
 *   verified.
 * - Kept whatever its age, with the check that kept it: the SSM parameter, anything DescribeImageReferences names
 *   (live instances, launch templates, SSM parameters, Image Builder recipes), the default version of any launch
 *   template, deregistration protection (a cooldown included: retired on a later run), a launch after publishing
 *   within retention.keepIfLaunchedWithinDays.
 * - Retiring is in two steps: a copy leaving the kept set is disabled (DisableImage, reversible with
 *   `ami-pipeline restore`) and tagged with the end of its grace period (retention.graceDays; 0: at once); a later run
 *   past that time deregisters it with DeleteAssociatedSnapshots and reports each snapshot's result.
 * - A sweep deletes the lineage's snapshots no image uses any more (a snapshot the deregistration could not delete,
 *   or one whose copy is gone); a snapshot still in use is left and reported.
 * - dryRun: reports what would be disabled, deregistered and swept, and changes nothing.
 * Throws AccessDeniedError, AwsRequestFailedError (terminal); throttling and 5xx (retryable).
 */
import { CreateTagsCommand, DeregisterImageCommand, DisableImageCommand, EC2Client, type Image } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, IMAGE_GONE } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { imagesInUse, launchedRecently, protectionOf } from './shared/image-use';
import { describeImage, lineageFilters, ownImages, snapshotIdsOf, tagOf } from './shared/images';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { sweepSnapshots, type SweepResult } from './shared/sweep';
import { MANAGED_BY, TAGS } from './shared/tags';
import { targetClients, where } from './shared/target';
import type { RetentionResult } from './shared/manifest-schema';

export const retentionEventSchema = z.object({
  item: targetItemSchema,
  copy: z.object({ imageId: z.string() }),
  publish: z.object({ parameterName: z.string().nullable(), lineage: z.string().nullable() }),
});
export type RetentionEvent = z.infer<typeof retentionEventSchema>;

export type { RetentionResult };

export interface RetentionDeps {
  clients: ClientFactory;
  now: () => Date;
}
export const defaultDeps: RetentionDeps = { clients: clientFactory({ ec2: EC2Client, ssm: SSMClient }), now: () => new Date() };

export const NO_LINEAGE = 'no lineage: set publish.parameterName or retention.lineage';
const NOTHING_SWEPT: SweepResult = { deleted: [], left: [] };

const RETIRE_FIX =
  `The target role needs ec2:DisableImage, ec2:CreateTags, ec2:DeregisterImage and ec2:DeleteSnapshot on images and snapshots tagged ${TAGS.managedBy}=${MANAGED_BY} (templates/target-account.yml).`;

/** Available and disabled images of the lineage that this pipeline made, newest first. */
async function lineageImages(ec2: EC2Client, item: TargetItem, lineage: string): Promise<Image[]> {
  const images = await ownImages(ec2, lineageFilters(lineage, { Name: 'state', Values: ['available', 'disabled'] }), `Listing copies of lineage ${lineage} in ${where(item)}`, {
    includeDisabled: true,
  });
  // The filters already say so; checked again so that an endpoint ignoring a filter cannot hand us a foreign image.
  return images
    .filter((i) => i.ImageId && tagOf(i, TAGS.managedBy) === MANAGED_BY && tagOf(i, TAGS.lineage) === lineage && (i.State === 'available' || i.State === 'disabled'));
}

/** Disable the copy for its grace period; the tag says when a later run may deregister it. */
async function disable(ec2: EC2Client, item: TargetItem, image: Image, retireAfter: string): Promise<void> {
  const imageId = image.ImageId ?? '';
  await aws(
    `Disabling ${imageId} in ${where(item)}`,
    async () => {
      // Tagged first: a copy found disabled without the tag is given a grace period from then.
      await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.retireAfter, Value: retireAfter }] }));
      if (image.State !== 'disabled') await ec2.send(new DisableImageCommand({ ImageId: imageId }));
    },
    RETIRE_FIX,
  );
}

/** Deregister with its snapshots in one call; null when EC2 refused because protection still holds. */
async function deregister(ec2: EC2Client, item: TargetItem, image: Image): Promise<RetentionResult['retired'][number] | null> {
  const imageId = image.ImageId ?? '';
  let out;
  try {
    out = await aws(`Deregistering ${imageId} in ${where(item)}`, () => ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true })), {
      fix: RETIRE_FIX,
      absentOn: IMAGE_GONE,
    });
  } catch (error) {
    // Protection may have been enabled since we looked (AWS does not document the code it gives): read it back.
    const again = await describeImage(ec2, imageId, `Describing ${imageId} in ${where(item)}`, { includeDisabled: true });
    if (again && protectionOf(again)) return null;
    throw error;
  }
  // Already deregistered (a retried invocation): its snapshots, if any are left, are the sweep's.
  if (!out) return { imageId, snapshotIds: [], snapshotsLeft: [] };
  const results = out.DeleteSnapshotResults ?? [];
  return {
    imageId,
    snapshotIds: results.filter((r) => r.ReturnCode === 'success').map((r) => r.SnapshotId ?? ''),
    snapshotsLeft: results.filter((r) => r.ReturnCode !== 'success').map((r) => ({ snapshotId: r.SnapshotId ?? '', code: r.ReturnCode ?? 'unknown' })),
  };
}

export async function applyRetention(event: RetentionEvent, deps: RetentionDeps = defaultDeps): Promise<RetentionResult> {
  const { item, copy, publish } = event;
  const { keep, dryRun, graceDays, keepIfLaunchedWithinDays } = item.settings.retention;
  const lineage = publish.lineage ?? item.settings.retention.lineage ?? publish.parameterName;
  const result: RetentionResult = { lineage, keep, graceDays, dryRun, skipped: null, kept: [], disabled: [], retired: [], swept: NOTHING_SWEPT };
  if (!lineage) {
    logger.info('Retention skipped', { reason: NO_LINEAGE });
    return { ...result, skipped: NO_LINEAGE };
  }
  const now = deps.now();
  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  const images = await lineageImages(ec2, item, lineage);
  const others = images.filter((i) => i.ImageId !== copy.imageId);

  // The new copy holds one of the `keep` places; the rest go to the newest available verified copies.
  const newest = new Set(others.filter((i) => i.State === 'available' && tagOf(i, TAGS.verified) !== undefined).slice(0, Math.max(keep - 1, 0)));
  const rest = others.filter((i) => !newest.has(i));
  const inUse = await imagesInUse(
    { ec2, ssm: clients.ssm(item.target.region), where: where(item), parameterName: publish.parameterName },
    rest.map((i) => i.ImageId ?? ''),
  );

  result.kept.push({ imageId: copy.imageId, check: 'new-copy', reason: 'the new copy' });
  for (const image of others) {
    const imageId = image.ImageId ?? '';
    if (newest.has(image)) {
      result.kept.push({ imageId, check: 'newest', reason: `one of the newest ${keep} verified copies` });
      continue;
    }
    const launched = launchedRecently(image, now, keepIfLaunchedWithinDays);
    const protection = protectionOf(image);
    const use =
      inUse.get(imageId) ??
      (protection ? { check: 'deregistration-protection' as const, reason: `deregistration protection (${protection}); retired on a later run once it is lifted` } : undefined) ??
      (launched ? { check: 'last-launched' as const, reason: `launched ${launched}, within ${keepIfLaunchedWithinDays} days` } : undefined);
    if (use) {
      result.kept.push({ imageId, ...use });
      continue;
    }
    const retireAfter = tagOf(image, TAGS.retireAfter);
    const due = graceDays === 0 || (image.State === 'disabled' && retireAfter !== undefined && Date.parse(retireAfter) <= now.getTime());
    if (!due) {
      const since = image.State === 'disabled' && retireAfter !== undefined ? 'earlier' : 'this run';
      const until = since === 'earlier' ? (retireAfter ?? '') : new Date(now.getTime() + graceDays * 86_400_000).toISOString();
      if (since === 'this run' && !dryRun) await disable(ec2, item, image, until);
      if (since === 'this run') logger.info('Image disabled', { imageId, retireAfter: until, dryRun });
      result.disabled.push({ imageId, retireAfter: until, since });
      continue;
    }
    if (dryRun) {
      result.retired.push({ imageId, snapshotIds: snapshotIdsOf(image), snapshotsLeft: [] });
      continue;
    }
    const retired = await deregister(ec2, item, image);
    if (retired) {
      logger.info('Image retired', { imageId, snapshotIds: retired.snapshotIds, snapshotsLeft: retired.snapshotsLeft });
      result.retired.push(retired);
    } else result.kept.push({ imageId, check: 'deregistration-protection', reason: 'deregistration protection was enabled meanwhile; retired on a later run' });
  }

  // A dry run retired nothing: those images still hold their snapshots.
  const inImages = new Set(images.filter((i) => dryRun || !result.retired.some((r) => r.imageId === i.ImageId)).flatMap(snapshotIdsOf));
  result.swept = await sweepSnapshots(ec2, { where: where(item), lineage, skip: inImages, dryRun });
  logger.info('Retention applied', {
    lineage,
    keep,
    graceDays,
    dryRun,
    at: now.toISOString(),
    kept: result.kept.map((k) => k.imageId),
    disabled: result.disabled.map((d) => d.imageId),
    retired: result.retired.map((r) => r.imageId),
    swept: result.swept.deleted,
  });
  return result;
}

export const makeHandler = (deps: RetentionDeps = defaultDeps) =>
  lambdaHandler('ApplyRetention', itemLogContext, (event) => applyRetention(parsePayload(retentionEventSchema, event, 'event'), deps));

export const handler = makeHandler();
