/** What the copy actions share: the state the wait loop carries, the dependencies, finding a source's copies. */
import type { EC2Client, Filter, Image } from '@aws-sdk/client-ec2';
import * as z from 'zod';
import { firstCopyWait } from '../shared/budget';
import type { ClientFactory } from '../shared/client-factory';
import { ownImages } from '../shared/images';
import type { Clock } from '../shared/poll';
import type { TargetItem } from '../shared/plan';
import { MANAGED_BY, TAGS } from '../shared/tags';
import { where } from '../shared/target';

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

export interface FoundCopy {
  imageId: string | null;
  state: string | null;
  kmsKeyArn: string | null;
  deregistered: boolean;
}

/** The tags that say what a copy is of and under which key: how a re-run, the retention and the cleanup find it. */
export function provenanceTags(item: Pick<TargetItem, 'source'>, kmsKeyArn: string): Record<string, string> {
  return {
    [TAGS.sourceImage]: item.source.imageId,
    [TAGS.sourceRegion]: item.source.region,
    [TAGS.sourceAccount]: item.source.accountId,
    [TAGS.kmsKey]: kmsKeyArn,
    [TAGS.managedBy]: MANAGED_BY,
  };
}

export const NO_COPY: FoundCopy = { imageId: null, state: null, kmsKeyArn: null, deregistered: false };

/** `sleep`: how the status check waits between its looks at a nearly done copy (default: a timer). */
export interface CopyEncryptDeps extends Clock {
  clients: ClientFactory;
  /** How long the status check keeps looking at a nearly done copy (default: approachWindow; 0: one look per check). */
  approachSeconds?: number;
}
/** This account's copies of the run's source (tagged with it) that also match `extra`, newest first. */
export function findCopies(ec2: EC2Client, item: TargetItem, extra: Filter[]): Promise<Image[]> {
  return ownImages(ec2, [{ Name: `tag:${TAGS.sourceImage}`, Values: [item.source.imageId] }, ...extra], `Looking for copies of ${item.source.imageId} in ${where(item)}`);
}

export function pollState(imageId: string, kmsKeyArn: string, state: string, reused: boolean, item: TargetItem, now: Date): CopyState {
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

