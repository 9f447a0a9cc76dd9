/**
 * The share ledger: which execution shared the source image and each of its snapshots with which accounts, kept as
 * tags on that image or snapshot (docs/share-ledger.md). A permission no ledger entry claims was given by hand and
 * is never revoked; a permission claimed only by executions that are no longer running is stale and revoked by the
 * next run or cleanup; one claimed by a running execution stays.
 *
 * Tags, per execution and resource (keys up to 128 characters, values up to 256):
 *   ami-pipeline:share:<executionName>       the execution's ARN
 *   ami-pipeline:share:<executionName>:<n>   the accounts it shared with, 21 twelve-digit IDs packed per value
 */
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { aws, type CodePattern, IMAGE_GONE, SNAPSHOT_GONE } from './errors';
import { TAG_PREFIX, type Tag } from './tags';

export const LEDGER_PREFIX = `${TAG_PREFIX}share:`;
/** 21 account IDs of 12 digits fill 252 of a tag value's 256 characters. */
export const ACCOUNTS_PER_TAG = 21;
/** EC2 allows 50 user tags per resource. */
export const MAX_TAGS_PER_RESOURCE = 50;
/** Launch and volume permission changes per call: kept modest. */
const ACCOUNTS_PER_CALL = 50;

export interface LedgerEntry {
  executionName: string;
  executionArn: string | null;
  accountIds: string[];
}

/** The image or one of its snapshots, as the ledger reads it. */
export interface SharedResource {
  kind: 'image' | 'snapshot';
  id: string;
  /** False when it no longer exists (deregistered, deleted). */
  exists: boolean;
  /** Accounts with launch (image) or volume (snapshot) permission now. */
  permitted: string[];
  tags: Tag[];
  entries: LedgerEntry[];
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The ledger entries among a resource's tags. */
export function readLedger(tags: readonly { Key?: string; Value?: string }[]): LedgerEntry[] {
  const entries = new Map<string, LedgerEntry>();
  const entry = (name: string) => {
    let e = entries.get(name);
    if (!e) entries.set(name, (e = { executionName: name, executionArn: null, accountIds: [] }));
    return e;
  };
  const parts = [...tags]
    .filter((t) => t.Key?.startsWith(LEDGER_PREFIX))
    .sort((a, b) => (a.Key ?? '').localeCompare(b.Key ?? '', 'en', { numeric: true }));
  for (const tag of parts) {
    const rest = (tag.Key ?? '').slice(LEDGER_PREFIX.length);
    // Execution names cannot contain ':' (Step Functions), so the last ':' splits off the chunk number.
    const m = /^(.+):(\d+)$/.exec(rest);
    if (m?.[1]) entry(m[1]).accountIds.push(...((tag.Value ?? '').match(/\d{12}/g) ?? []));
    else entry(rest).executionArn = tag.Value ?? null;
  }
  return [...entries.values()];
}

/** The tags recording that `executionName` shared the resource with `accountIds`. */
export function ledgerTags(executionName: string, executionArn: string, accountIds: string[]): Tag[] {
  return [
    { Key: `${LEDGER_PREFIX}${executionName}`, Value: executionArn },
    ...chunks(accountIds, ACCOUNTS_PER_TAG).map((c, i) => ({ Key: `${LEDGER_PREFIX}${executionName}:${i}`, Value: c.join('') })),
  ];
}

/** The keys of one execution's entry among a resource's tags. */
export function ledgerKeys(tags: readonly Tag[], executionName: string): string[] {
  const head = `${LEDGER_PREFIX}${executionName}`;
  return tags.filter((t) => t.Key === head || (t.Key.startsWith(`${head}:`) && /^\d+$/.test(t.Key.slice(head.length + 1)))).map((t) => t.Key);
}

const ids = (list: readonly { UserId?: string }[] | undefined) => (list ?? []).flatMap((p) => (p.UserId ? [p.UserId] : []));
const tagsOf = (list: readonly { Key?: string; Value?: string }[] | undefined): Tag[] =>
  (list ?? []).flatMap((t) => (t.Key !== undefined ? [{ Key: t.Key, Value: t.Value ?? '' }] : []));

/** Read the image and its snapshots: who may use them now, and the ledger's entries on each. */
export async function readShares(ec2: EC2Client, imageId: string, snapshotIds: readonly string[]): Promise<SharedResource[]> {
  // Permissions first, then tags: a run writes its entry before it adds a permission, so a permission read here
  // whose run's entry is not yet visible below cannot be mistaken for a hand-made share.
  const read = async (kind: SharedResource['kind'], id: string, permissions: () => Promise<string[]>, describe: () => Promise<{ Tags?: { Key?: string; Value?: string }[] } | undefined>, gone: readonly CodePattern[]) => {
    const found = await aws(
      `Reading the shares of ${id}`,
      async () => {
        const permitted = await permissions();
        const described = await describe();
        const tags = tagsOf(described?.Tags);
        return { exists: described !== undefined, permitted, tags, entries: readLedger(tags) };
      },
      { absentOn: gone },
    );
    return { kind, id, ...(found ?? { exists: false, permitted: [], tags: [], entries: [] }) };
  };
  const out: SharedResource[] = [
    await read(
      'image',
      imageId,
      async () => ids((await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }))).LaunchPermissions),
      async () => (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0],
      IMAGE_GONE,
    ),
  ];
  for (const snapshotId of snapshotIds) {
    out.push(
      await read(
        'snapshot',
        snapshotId,
        async () => ids((await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }))).CreateVolumePermissions),
        async () => (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0],
        SNAPSHOT_GONE,
      ),
    );
  }
  return out;
}

/** Who may use the image (launch) or snapshot (volume) now, read afresh. */
export async function readPermitted(ec2: EC2Client, resource: Pick<SharedResource, 'kind' | 'id'>): Promise<string[]> {
  const permitted = await aws(
    `Reading the shares of ${resource.id}`,
    async () =>
      resource.kind === 'image'
        ? ids((await ec2.send(new DescribeImageAttributeCommand({ ImageId: resource.id, Attribute: 'launchPermission' }))).LaunchPermissions)
        : ids((await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: resource.id, Attribute: 'createVolumePermission' }))).CreateVolumePermissions),
    { absentOn: resource.kind === 'image' ? IMAGE_GONE : SNAPSHOT_GONE },
  );
  return permitted ?? [];
}

/** Accounts with a permission on the resource that no ledger entry claims: shared by hand. */
export function handShared(resource: SharedResource): string[] {
  const claimed = new Set(resource.entries.flatMap((e) => e.accountIds));
  return resource.permitted.filter((a) => !claimed.has(a));
}

async function modify(ec2: EC2Client, resource: SharedResource, verb: 'Add' | 'Remove', accountIds: string[], options: { fix?: string; absentOn?: readonly string[] } = {}): Promise<void> {
  for (const batch of chunks(accountIds, ACCOUNTS_PER_CALL)) {
    const users = batch.map((UserId) => ({ UserId }));
    const what = `${verb === 'Add' ? 'Sharing' : 'Unsharing'} ${resource.kind === 'snapshot' ? 'snapshot ' : ''}${resource.id} with ${batch.join(', ')}`;
    await aws(
      what,
      () =>
        resource.kind === 'image'
          ? ec2.send(new ModifyImageAttributeCommand({ ImageId: resource.id, LaunchPermission: { [verb]: users } }))
          : ec2.send(
              new ModifySnapshotAttributeCommand({
                SnapshotId: resource.id,
                Attribute: 'createVolumePermission',
                OperationType: verb === 'Add' ? 'add' : 'remove',
                CreateVolumePermission: { [verb]: users },
              }),
            ),
      options,
    );
  }
}

export async function addPermissions(ec2: EC2Client, resource: SharedResource, accountIds: string[], fix?: string): Promise<void> {
  await modify(ec2, resource, 'Add', accountIds, { fix });
}

/** Remove permissions; a resource deleted meanwhile has none left to remove. */
export async function removePermissions(ec2: EC2Client, resource: SharedResource, accountIds: string[]): Promise<void> {
  await modify(ec2, resource, 'Remove', accountIds, { absentOn: [...IMAGE_GONE, ...SNAPSHOT_GONE] });
}

export async function writeEntry(ec2: EC2Client, resource: SharedResource, tags: Tag[]): Promise<void> {
  if (tags.length === 0) return;
  await aws(`Recording the share of ${resource.id} (tags ${LEDGER_PREFIX}*)`, () => ec2.send(new CreateTagsCommand({ Resources: [resource.id], Tags: tags })),
    'The pipeline role needs ec2:CreateTags on the source image and snapshots.');
}

export async function deleteEntries(ec2: EC2Client, resource: SharedResource, keys: string[]): Promise<void> {
  if (keys.length === 0 || !resource.exists) return;
  await aws(`Removing ledger entries from ${resource.id}`, () => ec2.send(new DeleteTagsCommand({ Resources: [resource.id], Tags: keys.map((Key) => ({ Key })) })), {
    fix: 'The pipeline role needs ec2:DeleteTags on the source image and snapshots.',
    absentOn: [...IMAGE_GONE, ...SNAPSHOT_GONE],
  });
}
