/**
 * Reading images the way every step does: an image's snapshot IDs and tags, newest first, one image by ID (gone is
 * not an error), a lineage's copies through every page, and the resolved source an image stands for.
 */
import { DescribeImagesCommand, type EC2Client, type Filter, type Image, paginateDescribeImages } from '@aws-sdk/client-ec2';
import { aws, IMAGE_GONE } from './errors';
import type { ResolvedSource } from './plan';
import { MANAGED_BY, TAGS } from './tags';

/** The EBS snapshots behind an image, in block-device order. */
export const snapshotIdsOf = (image: Image): string[] => (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));

export const tagOf = (image: Pick<Image, 'Tags'>, key: string): string | undefined => image.Tags?.find((t) => t.Key === key)?.Value;

/** Sort comparator: newest CreationDate first, then by image ID so that equal dates keep one order. */
export const newestFirst = (a: Image, b: Image): number =>
  (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') || (a.ImageId ?? '').localeCompare(b.ImageId ?? '');

/** Total size (GiB) of an image's EBS volumes, as its block device mappings give them. */
export function imageSizeGiB(mappings: readonly { Ebs?: { VolumeSize?: number } }[] | undefined): number {
  return (mappings ?? []).reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0), 0);
}

/** One image by ID; undefined when EC2 says the ID names no image (IMAGE_GONE) or lists none. */
export async function describeImage(
  ec2: EC2Client,
  imageId: string,
  action: string,
  options: { fix?: string; includeDisabled?: boolean } = {},
): Promise<Image | undefined> {
  const out = await aws(action, () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: options.includeDisabled })), {
    fix: options.fix,
    absentOn: IMAGE_GONE,
  });
  return out?.Images?.[0];
}

/** Every image of this account matching `filters` (all pages), newest first. */
export async function ownImages(ec2: EC2Client, filters: Filter[], action: string, options: { fix?: string; includeDisabled?: boolean } = {}): Promise<Image[]> {
  const images: Image[] = [];
  const pages = paginateDescribeImages({ client: ec2 }, { Owners: ['self'], Filters: filters, IncludeDisabled: options.includeDisabled });
  await aws(
    action,
    async () => {
      for await (const page of pages) images.push(...(page.Images ?? []));
    },
    options.fix,
  );
  return images.sort(newestFirst);
}

/** The filters of a lineage's copies: the pipeline made them and PublishImage tagged them with the lineage. */
export function lineageFilters(lineage: string, ...extra: Filter[]): Filter[] {
  return [{ Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] }, { Name: `tag:${TAGS.lineage}`, Values: [lineage] }, ...extra];
}

/** The key an image's snapshots are encrypted with: the pipeline's tag, else the first encrypted mapping's; null when neither says. */
export const keyOfImage = (image: Image): string | null =>
  tagOf(image, TAGS.kmsKey) ?? image.BlockDeviceMappings?.find((m) => m.Ebs?.KmsKeyId)?.Ebs?.KmsKeyId ?? null;

/** What a run needs to know of the image it copies. */
export function resolvedSourceOf(
  image: Image,
  where: { region: string; accountId: string },
  extra: Pick<ResolvedSource, 'tags' | 'preexistingShares'> & { snapshotIds?: string[] },
): ResolvedSource {
  const imageId = image.ImageId ?? '';
  return {
    imageId,
    region: where.region,
    accountId: where.accountId,
    name: image.Name ?? imageId,
    architecture: image.Architecture ?? 'x86_64',
    rootDeviceName: image.RootDeviceName ?? '/dev/xvda',
    snapshotIds: extra.snapshotIds ?? snapshotIdsOf(image),
    sizeGiB: imageSizeGiB(image.BlockDeviceMappings),
    tags: extra.tags,
    preexistingShares: extra.preexistingShares,
  };
}
