/** CopyEncryptImage: the target key checked, an existing copy reused, else CopyImage with a ClientToken every run shares. */
import { CopyImageCommand, type CopyImageCommandInput, type CopyImageCommandOutput, CreateTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { aws, IMAGE_GONE, ImageCopyFailedError, ImageNotYetVisibleError } from '../shared/errors';
import { describeImage } from '../shared/images';
import { logger } from '../shared/logger';
import type { TargetItem } from '../shared/plan';
import { digest, expandTagTemplates, TAGS, tagList } from '../shared/tags';
import { targetClients, where } from '../shared/target';
import { resolveTargetKey } from '../shared/target-key';
import { findCopies, pollState, provenanceTags, type CopyEncryptDeps, type CopyState } from './copy-state';

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

export async function startCopy(item: TargetItem, deps: CopyEncryptDeps): Promise<CopyState> {
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
    ...provenanceTags(item, kmsKeyArn),
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
    // Undefined while the new copy is not visible yet.
    const image = await describeImage(ec2, imageId, `Describing copy ${imageId}`);
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
  const out = await aws<CopyImageCommandOutput | null>(
    `Copying ${item.source.imageId} into ${where(item)}`,
    // CopyImage runs in the destination account and region and pulls from SourceRegion.
    () => ec2.send(new CopyImageCommand({ ...request, ClientToken: token })),
    {
      fix:
        'Check that the source is shared with this account (ShareSource) and that the target role may call ec2:CopyImage; ' +
        'if an image with this name exists, set copy.name to a template with {date} or {executionName}.',
      on: { IdempotentParameterMismatch: () => null },
    },
  );
  if (out === null) return null;
  if (!out.ImageId) throw new ImageCopyFailedError(`CopyImage into ${where(item)} returned no image ID`);
  return out.ImageId;
}

/** Record the run that made the copy (cleanup and the failure path look for it); a copy not visible yet is tagged later. */
async function tagExecution(ec2: EC2Client, item: TargetItem, imageId: string): Promise<void> {
  await aws(`Tagging copy ${imageId} in ${where(item)}`, () => ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.execution, Value: item.executionName }] })), {
    absentOn: IMAGE_GONE,
  });
}

