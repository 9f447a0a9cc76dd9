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
  /** On a published copy: when PublishImage published it; launches before it were the pipeline's own launch check. */
  publishedAt: `${TAG_PREFIX}published-at`,
  /** On a copy whose deregistration protection PublishImage enabled (and will move to the next one). */
  protectedBy: `${TAG_PREFIX}protected`,
  /** On a disabled copy: when ApplyRetention may deregister it (the grace period's end). */
  retireAfter: `${TAG_PREFIX}retire-after`,
} as const;
export const MANAGED_BY = 'encrypted-ami-pipeline';
/** Tags the pipeline itself puts on a copy (TAGS above, plus Name); the rest of EC2's 50 are the user's. */
export const PIPELINE_TAG_COUNT = 12;
/** EC2: at most 50 user tags per resource (docs/lifecycle.md). */
export const MAX_TAGS_PER_RESOURCE = 50;
export const MAX_USER_TAGS = MAX_TAGS_PER_RESOURCE - PIPELINE_TAG_COUNT;

export interface Tag {
  Key: string;
  Value: string;
}

/** Expand {placeholders} of a tag template (unknown ones become empty); values are cut to EC2's 256 characters. */
export function expandTagTemplates(templates: Record<string, string>, values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(templates).map(([key, template]) => [key, template.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? '').slice(0, 256)]),
  );
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
