/**
 * CopyEncryptImage / GetImageState / FindTargetCopy, inside one target account and region (through the target role):
 * - copy: checks the target key (exists, enabled, symmetric, customer managed, owned by the target account), reuses
 *   an existing copy of the same source with the same key (found by tags), else CopyImage with Encrypted=true,
 *   the target's key and a ClientToken that does not depend on the run (concurrent runs get one copy). Returns the copy and the first wait of the poll loop.
 * - status: reads the copy's state for the wait loop; once available, tags it (and its snapshots), checks its
 *   provenance (SourceImageId / SourceImageRegion must be the run's source: else ProvenanceMismatchError, before any
 *   grant or launch) and sets its deprecation (copy.deprecateAfterDays, EnableImageDeprecation);
 *   a `failed` copy is deregistered with its snapshots and becomes ImageCopyFailedError carrying AWS's StateReason.
 * - find: on the failure path, reports the copy this run made (if any) so the manifest accounts for it.
 * The copy carries the pipeline's tags plus copy.tags (placeholders expanded) and the source tags ResolveSource
 * selected (copy.copySourceTags), all in CopyImage's TagSpecifications so tag policies requiring tags at creation hold.
 * Throws KmsKeyUnusableError, ImageCopyFailedError, ProvenanceMismatchError, TargetRoleNotAssumableError, AccessDeniedError (terminal);
 * ImageNotYetVisibleError, CopyLimitExceededError, throttling and 5xx (retryable).
 */
import {
  CopyImageCommand,
  type CopyImageCommandInput,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  EnableImageDeprecationCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import * as z from 'zod';
import { approachWindow, COPY_WAIT, copyNearlyDone, firstCopyWait, nextCopyWait } from './shared/budget';
import { keepLooking, type Clock } from './shared/poll';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { targetClients, where } from './shared/target';
import { resolveTargetKey } from './shared/target-key';
import {
  AccessDeniedError,
  aws,
  awsCode,
  ImageCopyFailedError,
  ImageNotYetVisibleError,
  ProvenanceMismatchError,
  TargetRoleNotAssumableError,
  toPipelineError,
} from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { digest, expandTagTemplates, MANAGED_BY, TAGS, tagList } from './shared/tags';

export const copyStateSchema = z.object({
  imageId: z.string(),
  kmsKeyArn: z.string(),
  state: z.string(),
  reused: z.boolean(),
  attempt: z.number().int(),
  waitSeconds: z.number().int(),
  /** The copy's snapshots' least progress (%) at the last look; null when not known. */
  progress: z.number().int().nullable().default(null),
  startedAt: z.string(),
  deadline: z.string(),
  checkedAt: z.string(),
});
export type CopyState = z.infer<typeof copyStateSchema>;

export const copyEncryptEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('copy'), item: targetItemSchema }),
  z.object({ action: z.literal('status'), item: targetItemSchema, copy: copyStateSchema }),
  z.object({ action: z.literal('find'), item: targetItemSchema }),
]);
export type CopyEncryptEvent = z.infer<typeof copyEncryptEventSchema>;

export interface FoundCopy {
  imageId: string | null;
  state: string | null;
  kmsKeyArn: string | null;
  deregistered: boolean;
}

const NO_COPY: FoundCopy = { imageId: null, state: null, kmsKeyArn: null, deregistered: false };

/** `sleep`: how the status check waits between its looks at a nearly done copy (default: a timer). */
export interface CopyEncryptDeps extends Clock {
  clients: ClientFactory;
  /** How long the status check keeps looking at a nearly done copy (default: approachWindow; 0: one look per check). */
  approachSeconds?: number;
}
export const defaultDeps: CopyEncryptDeps = { clients: clientFactory({ ec2: EC2Client, kms: KMSClient }), now: () => new Date() };


async function findCopies(ec2: EC2Client, item: TargetItem, extra: { Name: string; Values: string[] }[]): Promise<Image[]> {
  const out = await aws(`Looking for copies of ${item.source.imageId} in ${where(item)}`, () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [{ Name: `tag:${TAGS.sourceImage}`, Values: [item.source.imageId] }, ...extra],
      }),
    ),
  );
  return (out.Images ?? []).sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''));
}

/** What {placeholders} of copy.name and copy.tags stand for. */
function placeholderValues(item: TargetItem, now: Date): Record<string, string> {
  return {
    sourceName: item.source.name,
    sourceImageId: item.source.imageId,
    accountId: item.target.accountId,
    region: item.target.region,
    date: now.toISOString().slice(0, 10),
    executionName: item.executionName,
  };
}

/** The user's tags of a copy: the selected source tags, then copy.tags (expanded), which win on the same key. */
export function userTags(item: TargetItem, now: Date): Record<string, string> {
  return { ...item.source.tags, ...expandTagTemplates(item.settings.copy.tags, placeholderValues(item, now)) };
}

export function copyName(item: TargetItem, now: Date): string {
  const template = item.settings.copy.name ?? (item.settings.mode === 'rekey' ? '{sourceName} rekeyed {sourceImageId}' : '{sourceName} encrypted {sourceImageId}');
  const values = placeholderValues(item, now);
  const name = template.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? '').replace(/[^a-zA-Z0-9()[\] ./\-'@_]/g, '-');
  return name.slice(0, 128);
}

/** How many failed copies one run steps past under the same token chain before it gives up. */
export const MAX_TOKEN_LINKS = 5;

/**
 * ClientToken: at most 64 characters. It covers everything CopyImage is sent (source, account, region (EC2 does not
 * compare the region), key, name, tags, description) but not the execution, so every run of the same source into the
 * same target gets the same copy from EC2 however many start together, and the UTC day, so that a token whose copy
 * failed and vanished is not reused past that day. `spent` lists the copies earlier tokens gave that had failed or
 * been deregistered: each one moves the run (every run alike) to the next token, so a later run can retry a copy
 * that failed (docs/concurrent-runs.md).
 */
export function copyClientToken(item: TargetItem, kmsKeyArn: string, request: object, day: string, spent: readonly string[] = []): string {
  return digest(item.source.imageId, item.source.region, item.target.accountId, item.target.region, kmsKeyArn, JSON.stringify(request), day, ...spent).slice(0, 64);
}

function pollState(imageId: string, kmsKeyArn: string, state: string, reused: boolean, item: TargetItem, now: Date): CopyState {
  const deadline = new Date(now.getTime() + item.settings.copy.timeoutMinutes * 60_000);
  return {
    imageId,
    kmsKeyArn,
    state,
    reused,
    attempt: 0,
    waitSeconds: state === 'available' ? 0 : firstCopyWait(item.source.sizeGiB),
    progress: state === 'available' ? 100 : null,
    startedAt: now.toISOString(),
    deadline: deadline.toISOString(),
    checkedAt: now.toISOString(),
  };
}

export async function startCopy(item: TargetItem, deps: CopyEncryptDeps = defaultDeps): Promise<CopyState> {
  const clients = targetClients(item, deps);
  const kmsKeyArn = await resolveTargetKey(item, clients);
  const ec2 = clients.ec2(item.target.region);
  const now = deps.now();
  const existing = (await findCopies(ec2, item, [{ Name: `tag:${TAGS.kmsKey}`, Values: [kmsKeyArn] }])).filter(
    (i) => i.State === 'available' || i.State === 'pending',
  );
  const reuse = existing.find((i) => i.State === 'available') ?? existing[0];
  if (reuse?.ImageId) {
    logger.info('Existing copy reused', { imageId: reuse.ImageId, state: reuse.State });
    return pollState(reuse.ImageId, kmsKeyArn, reuse.State ?? 'pending', true, item, now);
  }
  // The user's first; a Name among them wins over the pipeline's (their ami-pipeline: keys are refused by the schema).
  // No execution tag here: the request must be the same for every run (see copyClientToken); it is added below.
  const { Name: userName, ...user } = userTags(item, now);
  const tags = tagList({
    ...user,
    [TAGS.sourceImage]: item.source.imageId,
    [TAGS.sourceRegion]: item.source.region,
    [TAGS.sourceAccount]: item.source.accountId,
    [TAGS.kmsKey]: kmsKeyArn,
    [TAGS.managedBy]: MANAGED_BY,
    Name: userName ?? copyName(item, now),
  });
  const request = {
    SourceImageId: item.source.imageId,
    SourceRegion: item.source.region,
    Name: copyName(item, now),
    Description: `${item.source.imageId} from ${item.source.accountId}/${item.source.region}, encrypted by encrypted-ami-pipeline`,
    Encrypted: true,
    KmsKeyId: kmsKeyArn,
    TagSpecifications: [
      { ResourceType: 'image' as const, Tags: tags },
      { ResourceType: 'snapshot' as const, Tags: tags },
    ],
  };
  const day = now.toISOString().slice(0, 10);
  const spent: string[] = [];
  for (let link = 0; link < MAX_TOKEN_LINKS; link += 1) {
    const imageId = await requestCopy(ec2, item, request, copyClientToken(item, kmsKeyArn, request, day, spent));
    if (imageId === null) {
      // IdempotentParameterMismatch: another run sent this token with other parameters; its copy is the one to use.
      const other = (await findCopies(ec2, item, [{ Name: `tag:${TAGS.kmsKey}`, Values: [kmsKeyArn] }])).find((i) => i.State === 'available' || i.State === 'pending');
      if (other?.ImageId) return pollState(other.ImageId, kmsKeyArn, other.State ?? 'pending', true, item, now);
      throw new ImageNotYetVisibleError(`Another run is copying ${item.source.imageId} into ${where(item)}; its copy is not visible yet`);
    }
    const image = await describeCopy(ec2, imageId);
    if (image?.State === 'failed' || image?.State === 'deregistered') {
      // This token's copy failed before (this run or another): step to the next token of the chain.
      spent.push(imageId);
      continue;
    }
    const owner = image?.Tags?.find((t) => t.Key === TAGS.execution)?.Value;
    const reused = owner !== undefined && owner !== item.executionName;
    if (!reused) await tagExecution(ec2, item, imageId);
    logger.info(reused ? 'Copy started by another run reused' : 'Image copy started', { imageId, sourceImageId: item.source.imageId, kmsKeyArn, owner });
    // Always through GetImageState once: it tags, checks provenance and sets the deprecation of the copy.
    return pollState(imageId, kmsKeyArn, 'pending', reused, item, now);
  }
  throw new ImageCopyFailedError(`${MAX_TOKEN_LINKS} copies of ${item.source.imageId} into ${where(item)} failed today (${spent.join(', ')}); fix the cause (the target key, the source's key) and run again.`);
}

/** CopyImage with the token; null when EC2 answers IdempotentParameterMismatch (the token was sent with other parameters). */
async function requestCopy(ec2: EC2Client, item: TargetItem, request: Omit<CopyImageCommandInput, 'ClientToken'>, token: string): Promise<string | null> {
  try {
    const out = await aws(
      `Copying ${item.source.imageId} into ${where(item)}`,
      // CopyImage runs in the destination account and region and pulls from SourceRegion.
      () => ec2.send(new CopyImageCommand({ ...request, ClientToken: token })),
      'Check that the source is shared with this account (ShareSource) and that the target role may call ec2:CopyImage; ' +
        'if an image with this name exists, set copy.name to a template with {date} or {executionName}.',
    );
    if (!out.ImageId) throw new ImageCopyFailedError(`CopyImage into ${where(item)} returned no image ID`);
    return out.ImageId;
  } catch (error) {
    if (awsCode(error) === 'IdempotentParameterMismatch') return null;
    throw error;
  }
}

/** The copy as DescribeImages sees it now; undefined while it is not visible yet. */
async function describeCopy(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    return (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  } catch (error) {
    if (awsCode(error).startsWith('InvalidAMIID')) return undefined;
    throw toPipelineError(error, `Describing copy ${imageId}`);
  }
}

/** Record the run that made the copy (cleanup and the failure path look for it); a copy not visible yet is tagged later. */
async function tagExecution(ec2: EC2Client, item: TargetItem, imageId: string): Promise<void> {
  try {
    await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.execution, Value: item.executionName }] }));
  } catch (error) {
    if (!awsCode(error).startsWith('InvalidAMIID')) throw toPipelineError(error, `Tagging copy ${imageId} in ${where(item)}`);
  }
}

async function tagCopy(ec2: EC2Client, item: TargetItem, image: Image, kmsKeyArn: string): Promise<void> {
  // TagSpecifications of CopyImage tag the new image and snapshots; tagging again once available makes sure
  // re-runs find the copy by its tags whatever the endpoint did with them (CreateTags is idempotent).
  const resources = [image.ImageId ?? '', ...(image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []))];
  const wanted: Record<string, string> = {
    [TAGS.sourceImage]: item.source.imageId,
    [TAGS.sourceRegion]: item.source.region,
    [TAGS.sourceAccount]: item.source.accountId,
    [TAGS.kmsKey]: kmsKeyArn,
    [TAGS.managedBy]: MANAGED_BY,
  };
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
  let image: Image | undefined;
  try {
    image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [copy.imageId] }))).Images?.[0];
  } catch (error) {
    if (!awsCode(error).startsWith('InvalidAMIID')) throw toPipelineError(error, `Describing copy ${copy.imageId} in ${where(item)}`);
  }
  if (!image) {
    // A new copy can take a moment to become visible to DescribeImages.
    throw new ImageNotYetVisibleError(`Copy ${copy.imageId} is not visible in ${where(item)} yet`);
  }
  if (image.State !== 'pending') return { image, percent: null };
  const snapshotIds = (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
  if (snapshotIds.length === 0) return { image, percent: null };
  let snapshots;
  try {
    snapshots = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }))).Snapshots ?? [];
  } catch (error) {
    // The copy's snapshots can lag behind the image: progress is then simply not known yet.
    if (awsCode(error).startsWith('InvalidSnapshot')) return { image, percent: null };
    // A target role from before progress was read (templates/target-account.yml without ec2:DescribeSnapshots):
    // wait without it rather than fail the copy.
    if (awsCode(error) === 'UnauthorizedOperation') {
      logger.warn('No ec2:DescribeSnapshots in the target role: waiting without the copy progress; update templates/target-account.yml', { imageId: copy.imageId });
      return { image, percent: null };
    }
    throw toPipelineError(error, `Reading the progress of copy ${copy.imageId} in ${where(item)}`);
  }
  const percents = snapshots.map((s) => Number.parseInt(s.Progress ?? '', 10)).filter((p) => Number.isFinite(p));
  return { image, percent: percents.length === snapshotIds.length ? Math.min(...percents) : null };
}

export async function copyStatus(item: TargetItem, copy: CopyState, deps: CopyEncryptDeps = defaultDeps): Promise<CopyState> {
  const ec2 = targetClients(item, deps).ec2(item.target.region);
  const started = Date.parse(copy.startedAt);
  const deadline = Date.parse(copy.deadline);
  const elapsed = () => (deps.now().getTime() - started) / 1000;
  let look = await lookAtCopy(ec2, item, copy);
  const approach = deps.approachSeconds ?? approachWindow(elapsed());
  if (look.image.State === 'pending' && approach > 0 && copyNearlyDone(elapsed(), look.percent)) {
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
    const wait = nextCopyWait({ elapsed: elapsed(), percent, previousWait: copy.waitSeconds, untilDeadline: (deadline - now.getTime()) / 1000 });
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

export async function findCopy(item: TargetItem, deps: CopyEncryptDeps = defaultDeps): Promise<FoundCopy> {
  let images: Image[];
  try {
    const ec2 = targetClients(item, deps).ec2(item.target.region);
    images = await findCopies(ec2, item, [{ Name: `tag:${TAGS.execution}`, Values: [item.executionName] }]);
    // A copy this run already deregistered (it failed) is still reported, so the manifest names it.
    const copy = images.find((i) => i.State !== 'deregistered') ?? images[0];
    if (!copy?.ImageId) return NO_COPY;
    if (copy.State === 'deregistered') return { imageId: copy.ImageId, state: 'deregistered', kmsKeyArn: null, deregistered: true };
    const kmsKeyArn = copy.Tags?.find((t) => t.Key === TAGS.kmsKey)?.Value ?? null;
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

export async function copyEncrypt(event: CopyEncryptEvent, deps: CopyEncryptDeps = defaultDeps): Promise<CopyState | FoundCopy> {
  switch (event.action) {
    case 'copy':
      return startCopy(event.item, deps);
    case 'status':
      return copyStatus(event.item, event.copy, deps);
    case 'find':
      return findCopy(event.item, deps);
  }
}

export const makeHandler = (deps: CopyEncryptDeps = defaultDeps) =>
  lambdaHandler('CopyEncrypt', itemLogContext, (event) => copyEncrypt(parsePayload(copyEncryptEventSchema, event, 'event'), deps));

export const handler = makeHandler();
