/** Tags on everything the pipeline creates, under one prefix, and the deterministic names derived from them. */
import { createHash } from 'node:crypto';

export const TAG_PREFIX = 'ami-pipeline:';
export const TAGS = {
  sourceImage: `${TAG_PREFIX}source-image`,
  sourceRegion: `${TAG_PREFIX}source-region`,
  sourceAccount: `${TAG_PREFIX}source-account`,
  execution: `${TAG_PREFIX}execution`,
  kmsKey: `${TAG_PREFIX}kms-key`,
  launchCheck: `${TAG_PREFIX}launch-check`,
  /** On a published copy: the launch check it passed (auto-scaling, run-instances, or none). */
  verified: `${TAG_PREFIX}verified`,
  /** On a published copy: the lineage retention counts it in. */
  lineage: `${TAG_PREFIX}lineage`,
  managedBy: `${TAG_PREFIX}managed-by`,
} as const;
export const MANAGED_BY = 'encrypted-ami-pipeline';

export interface Tag {
  Key: string;
  Value: string;
}

export function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** A short stable digest of its parts, for tokens and names that must repeat on a re-run. */
export function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/**
 * Name of the launch check's launch template and Auto Scaling group, and the tag on its instances:
 * derived from the execution and the target so that cleanup finds them even when the step that made them was lost.
 */
export function launchCheckName(executionName: string, accountId: string, region: string): string {
  return `ami-pipeline-verify-${digest(executionName, accountId, region).slice(0, 20)}`;
}
