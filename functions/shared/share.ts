/**
 * Sharing the source through the ledger (./ledger.ts): a run records its claim before it adds a permission, and
 * revokes its own claim and every claim of an execution that is no longer running, never a permission given by hand
 * nor one a running execution still needs. ShareSource, UnshareSource, the janitor and `ami-pipeline cleanup` use it.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { SourceImageNotFoundError, ShareLedgerFullError } from './errors';
import { memoised, type Liveness } from './executions';
import {
  addPermissions,
  deleteEntries,
  handShared,
  ledgerKeys,
  ledgerTags,
  MAX_TAGS_PER_RESOURCE,
  readPermitted,
  readShares,
  removePermissions,
  writeEntry,
  type LedgerEntry,
} from './ledger';
import type { LeftShare } from './manifest-schema';

export interface SourceRef {
  imageId: string;
  snapshotIds: readonly string[];
}

export interface ExecutionRef {
  name: string;
  arn: string;
}

export interface ShareResult {
  /** Accounts given launch permission on the image by this call. */
  accountIds: string[];
  /** Snapshots this run claimed volume permission on. */
  snapshotIds: string[];
  /** Target accounts that already had launch permission given by hand: not claimed, never revoked. */
  handShared: string[];
}

/** Why a permission stays on the source (its schema is the manifest's). */
export type { LeftShare };

export interface RevokeResult {
  /** True when no permission of this execution or of an ended one remains. */
  revoked: boolean;
  /** Accounts whose launch permission on the image was removed. */
  accountIds: string[];
  /** Snapshots on which some volume permission was removed. */
  snapshotIds: string[];
  /** Ledger entries removed: this execution's and those of executions no longer running. */
  executions: string[];
  left: LeftShare[];
  /** True when the image no longer exists. */
  imageGone: boolean;
  dryRun: boolean;
}

/** Record this execution's claim on the image and each snapshot, then add the permissions the claim needs. */
export async function shareSource(ec2: EC2Client, source: SourceRef, accountIds: readonly string[], execution: ExecutionRef): Promise<ShareResult> {
  const resources = await readShares(ec2, source.imageId, source.snapshotIds);
  const image = resources[0];
  if (!image?.exists) throw new SourceImageNotFoundError(`Source image ${source.imageId} no longer exists; it was deregistered during the run. Run again with a current image.`);
  const result: ShareResult = { accountIds: [], snapshotIds: [], handShared: [] };
  for (const resource of resources) {
    if (!resource.exists) continue;
    const hand = new Set(handShared(resource));
    const claim = accountIds.filter((a) => !hand.has(a));
    if (resource.kind === 'image') result.handShared = accountIds.filter((a) => hand.has(a));
    if (claim.length === 0) continue;
    const tags = ledgerTags(execution.name, execution.arn, claim);
    const others = resource.tags.length - ledgerKeys(resource.tags, execution.name).length;
    if (others + tags.length > MAX_TAGS_PER_RESOURCE) {
      throw new ShareLedgerFullError(
        `Recording the share of ${resource.id} with ${claim.length} accounts needs ${tags.length} tags, and it already has ${others} of the ${MAX_TAGS_PER_RESOURCE} EC2 allows. ` +
          'Remove tags from it, wait for the other runs of this source to end (or run ami-pipeline cleanup), or split the targets over runs.',
      );
    }
    await writeEntry(ec2, resource, tags);
    // Read again once the entry is written: a run revoking at the same time either removed before this read (the
    // permission is added back here) or sees this entry when it checks after removing (docs/concurrent-runs.md).
    const permitted = await readPermitted(ec2, resource);
    const missing = claim.filter((a) => !permitted.includes(a));
    await addPermissions(
      ec2,
      resource,
      missing,
      resource.kind === 'image'
        ? 'The pipeline role needs ec2:ModifyImageAttribute on the source image.'
        : 'The pipeline role needs ec2:ModifySnapshotAttribute on the source snapshots; snapshots encrypted with the AWS managed key cannot be shared.',
    );
    if (resource.kind === 'image') result.accountIds = missing;
    else result.snapshotIds.push(resource.id);
  }
  return result;
}

export interface RevokeOptions {
  /** This run's own execution: its entry goes whatever Step Functions says. */
  own?: string;
  liveness: Liveness;
  /** Only say what would be removed. */
  dryRun?: boolean;
}

/** Revoke the permissions of `own` and of every execution that is no longer running; keep the rest and say why. */
export async function revokeShares(ec2: EC2Client, source: SourceRef, options: RevokeOptions): Promise<RevokeResult> {
  const resources = await readShares(ec2, source.imageId, source.snapshotIds);
  const liveness = memoised(options.liveness);
  const result: RevokeResult = {
    revoked: true,
    accountIds: [],
    snapshotIds: [],
    executions: [],
    left: [],
    imageGone: !resources[0]?.exists,
    dryRun: options.dryRun === true,
  };
  const removedNames = new Set<string>();
  const removed = new Map<string, Set<string>>();
  const claimedByRemoved = new Map<string, Set<string>>();
  for (const resource of resources) {
    if (!resource.exists) continue;
    const remove: LedgerEntry[] = [];
    const keep: { entry: LedgerEntry; status: string; running: boolean | null }[] = [];
    for (const entry of resource.entries) {
      if (entry.executionName === options.own) {
        remove.push(entry);
        continue;
      }
      const state = entry.executionArn ? await liveness(entry.executionArn) : { running: false, status: 'NO_ARN' };
      if (state.running === false) remove.push(entry);
      else keep.push({ entry, status: state.status, running: state.running });
    }
    const needed = new Map<string, (typeof keep)[number]>();
    for (const k of keep) for (const a of k.entry.accountIds) if (!needed.has(a) || k.running === true) needed.set(a, k);
    const claimed = new Set(remove.flatMap((e) => e.accountIds));
    const toRemove = resource.permitted.filter((a) => claimed.has(a) && !needed.has(a));
    for (const a of resource.permitted) {
      const holder = needed.get(a);
      if (holder && (claimed.has(a) || resource.kind === 'image')) {
        result.left.push({
          accountId: a,
          resourceId: resource.id,
          reason: holder.running === true ? 'execution-running' : 'execution-unknown',
          executionName: holder.entry.executionName,
          executionStatus: holder.status,
        });
        if (holder.running !== true) result.revoked = false;
      }
    }
    if (resource.kind === 'image') {
      for (const a of handShared(resource)) result.left.push({ accountId: a, resourceId: resource.id, reason: 'shared-by-hand' });
    }
    if (options.dryRun) {
      if (toRemove.length > 0 || remove.length > 0) result.revoked = false;
    } else {
      await removePermissions(ec2, resource, toRemove);
      await deleteEntries(ec2, resource, remove.flatMap((e) => ledgerKeys(resource.tags, e.executionName)));
    }
    if (resource.kind === 'image') result.accountIds = toRemove;
    else if (toRemove.length > 0) result.snapshotIds.push(resource.id);
    if (toRemove.length > 0) removed.set(resource.id, new Set(toRemove));
    if (remove.length > 0) claimedByRemoved.set(resource.id, new Set(remove.flatMap((e) => e.accountIds)));
    for (const e of remove) removedNames.add(e.executionName);
  }
  result.executions = [...removedNames].filter((n) => n !== options.own);
  if (!options.dryRun && (removed.size > 0 || claimedByRemoved.size > 0)) await settleAfterRevoke(ec2, source, claimedByRemoved, removed, liveness, options.own, result);
  return result;
}

/**
 * Runs of one source that end together each read the ledger before the other removed its entry, and each leave the
 * shared accounts to the other, still running: read the ledger again once this run's removals are done. A permission
 * the removed entries claimed and no entry claims any more goes (the last run to remove its entry sees that); one a
 * running execution claims and was just removed comes back (a run that started sharing meanwhile). See
 * docs/concurrent-runs.md.
 */
async function settleAfterRevoke(
  ec2: EC2Client,
  source: SourceRef,
  claimedByRemoved: Map<string, Set<string>>,
  removed: Map<string, Set<string>>,
  liveness: Liveness,
  own: string | undefined,
  result: RevokeResult,
): Promise<void> {
  for (const resource of await readShares(ec2, source.imageId, source.snapshotIds)) {
    if (!resource.exists) continue;
    const entries = resource.entries.filter((e) => e.executionName !== own);
    const claimedNow = new Set(entries.flatMap((e) => e.accountIds));
    const orphans = resource.permitted.filter((a) => claimedByRemoved.get(resource.id)?.has(a) && !claimedNow.has(a));
    if (orphans.length > 0) {
      await removePermissions(ec2, resource, orphans);
      result.left = result.left.filter((l) => !(l.resourceId === resource.id && orphans.includes(l.accountId)));
      if (resource.kind === 'image') result.accountIds = [...new Set([...result.accountIds, ...orphans])];
      else if (!result.snapshotIds.includes(resource.id)) result.snapshotIds.push(resource.id);
    }
    const gone = removed.get(resource.id);
    if (!gone) continue;
    const restore = new Map<string, { executionName: string; status: string }>();
    for (const entry of entries) {
      if (!entry.executionArn) continue;
      const state = await liveness(entry.executionArn);
      if (state.running !== true) continue;
      for (const a of entry.accountIds) if (gone.has(a) && !resource.permitted.includes(a)) restore.set(a, { executionName: entry.executionName, status: state.status });
    }
    if (restore.size === 0) continue;
    await addPermissions(ec2, resource, [...restore.keys()]);
    for (const [accountId, holder] of restore) {
      result.left.push({ accountId, resourceId: resource.id, reason: 'execution-running', executionName: holder.executionName, executionStatus: holder.status });
    }
    if (resource.kind === 'image') result.accountIds = result.accountIds.filter((a) => !restore.has(a));
  }
}
