/**
 * ApplyRetention: after PublishImage, inside the target account and region (through the target role), keeps the
 * newest `retention.keep` verified copies of the lineage and retires the others: DeregisterImage, then DeleteSnapshot
 * for each of its EBS snapshots. The lineage is the one PublishImage tagged the copy with (else retention.lineage,
 * else the expanded parameter name); without one nothing is looked at and the result says `skipped`.
 * - Candidates are this account's available images tagged managed-by=encrypted-ami-pipeline and with the lineage,
 *   so an image the pipeline did not create is never listed, let alone retired.
 * - The new copy always takes one of the `keep` places, even when newer copies exist; the other places go to the
 *   newest copies tagged verified. A copy of the lineage without that tag never takes a place: it is retired too.
 * - Never retired, whatever its age: the image the SSM parameter points at, an image in the default or latest
 *   version of any launch template of the region, an image a pending, running, stopping or stopped instance uses.
 * - dryRun: reports what would be retired and changes nothing.
 * Returns the lineage, each kept image with its reason and each retired image with its snapshots.
 * Throws AccessDeniedError, AwsRequestFailedError (terminal); throttling and 5xx (retryable).
 */
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory, type Clients } from './shared/client-factory';
import { aws, awsCode } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { MANAGED_BY, TAGS } from './shared/tags';
import { targetClients } from './copy-encrypt';

export const retentionEventSchema = z.object({
  item: targetItemSchema,
  copy: z.object({ imageId: z.string() }),
  publish: z.object({ parameterName: z.string().nullable(), lineage: z.string().nullable() }),
});
export type RetentionEvent = z.infer<typeof retentionEventSchema>;

export interface RetentionResult {
  lineage: string | null;
  keep: number;
  dryRun: boolean;
  skipped: string | null;
  kept: { imageId: string; reason: string }[];
  retired: { imageId: string; snapshotIds: string[] }[];
}

export interface RetentionDeps {
  clients: ClientFactory;
  now: () => Date;
}
export const defaultDeps: RetentionDeps = { clients: clientFactory({ ec2: EC2Client, ssm: SSMClient }), now: () => new Date() };

export const NO_LINEAGE = 'no lineage: set publish.parameterName or retention.lineage';
const LIVE_INSTANCE_STATES = ['pending', 'running', 'stopping', 'stopped'];
/** EC2 takes at most 200 values in one filter. */
const FILTER_VALUES_MAX = 200;

const where = (item: TargetItem) => `${item.target.accountId}/${item.target.region}`;
const tagOf = (image: Image, key: string) => image.Tags?.find((t) => t.Key === key)?.Value;
const snapshotsOf = (image: Image) => (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));

const READ_FIX =
  'The target role needs ec2:DescribeImages, ec2:DescribeLaunchTemplates, ec2:DescribeLaunchTemplateVersions, ec2:DescribeInstances and ssm:GetParameter.';
const RETIRE_FIX = `The target role needs ec2:DeregisterImage and ec2:DeleteSnapshot on images and snapshots tagged ${TAGS.managedBy}=${MANAGED_BY}.`;

/** Available images of the lineage that this pipeline made, newest first. */
async function lineageImages(ec2: EC2Client, item: TargetItem, lineage: string): Promise<Image[]> {
  const images: Image[] = [];
  let token: string | undefined;
  do {
    const out = await aws(
      `Listing copies of lineage ${lineage} in ${where(item)}`,
      () =>
        ec2.send(
          new DescribeImagesCommand({
            Owners: ['self'],
            Filters: [
              { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] },
              { Name: `tag:${TAGS.lineage}`, Values: [lineage] },
              { Name: 'state', Values: ['available'] },
            ],
            NextToken: token,
          }),
        ),
      READ_FIX,
    );
    images.push(...(out.Images ?? []));
    token = out.NextToken;
  } while (token);
  // The filters already say so; checked again so that an endpoint ignoring a filter cannot hand us a foreign image.
  return images
    .filter((i) => i.ImageId && tagOf(i, TAGS.managedBy) === MANAGED_BY && tagOf(i, TAGS.lineage) === lineage)
    .sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') || (a.ImageId ?? '').localeCompare(b.ImageId ?? ''));
}

/** Why each of `imageIds` must stay: the SSM parameter, a launch template, an instance. */
async function protections(clients: Clients, item: TargetItem, parameterName: string | null, imageIds: string[]): Promise<Map<string, string>> {
  const region = item.target.region;
  const ec2 = clients.ec2(region);
  const wanted = new Set(imageIds);
  const reasons = new Map<string, string>();
  const protect = (imageId: string | undefined, reason: string) => {
    if (imageId && wanted.has(imageId) && !reasons.has(imageId)) reasons.set(imageId, reason);
  };

  if (parameterName) {
    const name = parameterName;
    const value = await aws(
      `Reading parameter ${name} in ${where(item)}`,
      async () => (await clients.ssm(region).send(new GetParameterCommand({ Name: name }))).Parameter?.Value,
      READ_FIX,
    ).catch((error: unknown) => {
      if (awsCode(error) === 'ParameterNotFound') return undefined;
      throw error;
    });
    protect(value, `SSM parameter ${name}`);
  }

  let token: string | undefined;
  do {
    const page = await aws(`Listing launch templates in ${where(item)}`, () => ec2.send(new DescribeLaunchTemplatesCommand({ NextToken: token })), READ_FIX);
    for (const template of page.LaunchTemplates ?? []) {
      const id = template.LaunchTemplateId;
      if (!id) continue;
      const versions = await aws(
        `Reading launch template ${template.LaunchTemplateName ?? id} in ${where(item)}`,
        () => ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: ['$Default', '$Latest'], ResolveAlias: true })),
        READ_FIX,
      ).catch((error: unknown) => {
        // Deleted between the two calls: it protects nothing.
        if (awsCode(error).startsWith('InvalidLaunchTemplateId')) return { LaunchTemplateVersions: [] };
        throw error;
      });
      for (const v of versions.LaunchTemplateVersions ?? []) {
        protect(v.LaunchTemplateData?.ImageId, `launch template ${template.LaunchTemplateName ?? id} version ${v.VersionNumber ?? '?'}`);
      }
    }
    token = page.NextToken;
  } while (token);

  for (let i = 0; i < imageIds.length; i += FILTER_VALUES_MAX) {
    const chunk = imageIds.slice(i, i + FILTER_VALUES_MAX);
    let next: string | undefined;
    do {
      const page = await aws(
        `Looking for instances of ${chunk.length} image(s) in ${where(item)}`,
        () =>
          ec2.send(
            new DescribeInstancesCommand({
              Filters: [
                { Name: 'image-id', Values: chunk },
                { Name: 'instance-state-name', Values: LIVE_INSTANCE_STATES },
              ],
              NextToken: next,
            }),
          ),
        READ_FIX,
      );
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        protect(instance.ImageId, `used by instance ${instance.InstanceId ?? 'unknown'}`);
      }
      next = page.NextToken;
    } while (next);
  }
  return reasons;
}

/** Deregister the image, then delete its snapshots; returns the snapshots that are gone. */
async function retire(ec2: EC2Client, item: TargetItem, image: Image): Promise<string[]> {
  const imageId = image.ImageId ?? '';
  await aws(`Deregistering ${imageId} in ${where(item)}`, () => ec2.send(new DeregisterImageCommand({ ImageId: imageId })), RETIRE_FIX).catch(
    (error: unknown) => {
      // Already deregistered (a retried invocation): its snapshots may still be there.
      if (!awsCode(error).startsWith('InvalidAMIID')) throw error;
    },
  );
  const deleted: string[] = [];
  for (const snapshotId of snapshotsOf(image)) {
    const gone = await aws(
      `Deleting snapshot ${snapshotId} of ${imageId} in ${where(item)}`,
      async () => {
        await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
        return true;
      },
      RETIRE_FIX,
    ).catch((error: unknown) => {
      const code = awsCode(error);
      if (code === 'InvalidSnapshot.NotFound') return true;
      // Another image was registered from it; deleting the snapshot would break that image.
      if (code === 'InvalidSnapshot.InUse') {
        logger.warn('Snapshot left in use', { imageId, snapshotId });
        return false;
      }
      throw error;
    });
    if (gone) deleted.push(snapshotId);
  }
  return deleted;
}

export async function applyRetention(event: RetentionEvent, deps: RetentionDeps = defaultDeps): Promise<RetentionResult> {
  const { item, copy, publish } = event;
  const { keep, dryRun } = item.settings.retention;
  const lineage = publish.lineage ?? item.settings.retention.lineage ?? publish.parameterName;
  if (!lineage) {
    logger.info('Retention skipped', { reason: NO_LINEAGE });
    return { lineage: null, keep, dryRun, skipped: NO_LINEAGE, kept: [], retired: [] };
  }
  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  const others = (await lineageImages(ec2, item, lineage)).filter((i) => i.ImageId !== copy.imageId);

  // The new copy holds one of the `keep` places.
  const newest = new Set(others.filter((i) => tagOf(i, TAGS.verified) !== undefined).slice(0, Math.max(keep - 1, 0)));
  const rest = others.filter((i) => !newest.has(i));
  const reasons = rest.length > 0 ? await protections(clients, item, publish.parameterName, rest.map((i) => i.ImageId ?? '')) : new Map<string, string>();

  const kept: RetentionResult['kept'] = [{ imageId: copy.imageId, reason: 'the new copy' }];
  const doomed: Image[] = [];
  for (const image of others) {
    const imageId = image.ImageId ?? '';
    const reason = newest.has(image) ? `one of the newest ${keep} verified copies` : reasons.get(imageId);
    if (reason) kept.push({ imageId, reason });
    else doomed.push(image);
  }

  const retired: RetentionResult['retired'] = [];
  for (const image of doomed) {
    const imageId = image.ImageId ?? '';
    const snapshotIds = dryRun ? snapshotsOf(image) : await retire(ec2, item, image);
    if (!dryRun) logger.info('Image retired', { imageId, snapshotIds });
    retired.push({ imageId, snapshotIds });
  }
  logger.info('Retention applied', {
    lineage,
    keep,
    dryRun,
    at: deps.now().toISOString(),
    kept: kept.map((k) => k.imageId),
    retired: retired.map((r) => r.imageId),
  });
  return { lineage, keep, dryRun, skipped: null, kept, retired };
}

export const makeHandler = (deps: RetentionDeps = defaultDeps) =>
  lambdaHandler('ApplyRetention', itemLogContext, (event) =>
  applyRetention(parsePayload(retentionEventSchema, event, 'event'), deps),
);

export const handler = makeHandler();
