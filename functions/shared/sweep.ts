/**
 * The sweep of a lineage's snapshots: those tagged with the pipeline and the lineage that no image uses any more
 * (a snapshot DeregisterImage could not delete, or whose copy was deregistered without it) are deleted.
 * Whether an image uses a snapshot is asked of EC2 (DescribeImages filter block-device-mapping.snapshot-id, disabled
 * images included), so a snapshot someone registered another image from stays; DeleteSnapshot's
 * InvalidSnapshot.InUse leaves it too, and both are reported.
 */
import { DeleteSnapshotCommand, EC2Client, paginateDescribeImages, paginateDescribeSnapshots } from '@aws-sdk/client-ec2';
import { aws, SNAPSHOT_GONE } from './errors';
import { MANAGED_BY, TAGS } from './tags';
import type { SweepResult } from './manifest-schema';

export type { SweepResult };

/** EC2 takes at most 200 values in one filter. */
const FILTER_VALUES_MAX = 200;
const SWEEP_FIX = `The target role needs ec2:DescribeSnapshots, ec2:DescribeImages and ec2:DeleteSnapshot on snapshots tagged ${TAGS.managedBy}=${MANAGED_BY}.`;

export async function sweepSnapshots(
  ec2: EC2Client,
  options: { where: string; lineage: string; skip: Set<string>; dryRun: boolean },
): Promise<SweepResult> {
  const { where, lineage, skip, dryRun } = options;
  const candidates: string[] = [];
  const snapshots = paginateDescribeSnapshots(
    { client: ec2 },
    {
      OwnerIds: ['self'],
      Filters: [
        { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] },
        { Name: `tag:${TAGS.lineage}`, Values: [lineage] },
      ],
    },
  );
  await aws(
    `Listing snapshots of lineage ${lineage} in ${where}`,
    async () => {
      for await (const page of snapshots) {
        for (const s of page.Snapshots ?? []) if (s.SnapshotId && !skip.has(s.SnapshotId) && s.State !== 'pending') candidates.push(s.SnapshotId);
      }
    },
    SWEEP_FIX,
  );
  const result: SweepResult = { deleted: [], left: [] };
  if (candidates.length === 0) return result;

  const used = new Map<string, string>();
  for (let i = 0; i < candidates.length; i += FILTER_VALUES_MAX) {
    const chunk = candidates.slice(i, i + FILTER_VALUES_MAX);
    const images = paginateDescribeImages(
      { client: ec2 },
      { Owners: ['self'], IncludeDisabled: true, Filters: [{ Name: 'block-device-mapping.snapshot-id', Values: chunk }] },
    );
    await aws(
      `Looking for images of ${chunk.length} snapshot(s) in ${where}`,
      async () => {
        for await (const page of images) {
          for (const image of page.Images ?? []) {
            if (image.State === 'deregistered') continue;
            for (const m of image.BlockDeviceMappings ?? []) if (m.Ebs?.SnapshotId) used.set(m.Ebs.SnapshotId, image.ImageId ?? 'an image');
          }
        }
      },
      SWEEP_FIX,
    );
  }
  for (const snapshotId of candidates) {
    const user = used.get(snapshotId);
    if (user) {
      result.left.push({ snapshotId, reason: `used by ${user}` });
      continue;
    }
    if (dryRun) {
      result.deleted.push(snapshotId);
      continue;
    }
    const outcome = await aws(
      `Deleting orphaned snapshot ${snapshotId} in ${where}`,
      async () => {
        await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
        return 'deleted' as const;
      },
      { fix: SWEEP_FIX, absentOn: SNAPSHOT_GONE, on: { 'InvalidSnapshot.InUse': () => 'in use' as const } },
    );
    if (outcome === 'in use') result.left.push({ snapshotId, reason: 'InvalidSnapshot.InUse' });
    else if (outcome === 'deleted') result.deleted.push(snapshotId);
  }
  return result;
}
