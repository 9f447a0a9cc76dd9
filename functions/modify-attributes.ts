/**
 * ShareSource / UnshareSource: shares the source image (launchPermission) and its snapshots (createVolumePermission)
 * with the target accounts for the run, and afterwards removes exactly what the run added: accounts that already had
 * a permission before the run (recorded by ResolveSource) keep it. Both actions are idempotent.
 * Takes { action: "share" | "unshare", source, shareAccountIds }; returns the accounts and snapshots touched.
 * Throws AccessDeniedError, AwsRequestFailedError (terminal) or the retryable throttling/5xx errors.
 */
import { EC2Client, ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } from '@aws-sdk/client-ec2';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, awsCode } from './shared/errors';
import { lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, resolvedSourceSchema } from './shared/plan';

export const modifyAttributesEventSchema = z.object({
  action: z.enum(['share', 'unshare']),
  executionName: z.string(),
  source: resolvedSourceSchema,
  shareAccountIds: z.array(z.string()),
});
export type ModifyAttributesEvent = z.infer<typeof modifyAttributesEventSchema>;

export interface ModifyAttributesResult {
  action: 'share' | 'unshare';
  imageId: string;
  /** Accounts given (or relieved of) launch permission by this call. */
  accountIds: string[];
  snapshotIds: string[];
  /** True when the image no longer exists (unshare after it was deregistered). */
  imageGone: boolean;
}

export interface ModifyAttributesDeps {
  clients: ClientFactory;
}
export const defaultDeps: ModifyAttributesDeps = { clients: clientFactory({ ec2: EC2Client }) };

/** Launch permission can be given to many accounts per call; keep each call modest. */
const ACCOUNTS_PER_CALL = 50;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function modifyAttributes(
  event: ModifyAttributesEvent,
  deps: ModifyAttributesDeps = defaultDeps,
): Promise<ModifyAttributesResult> {
  const { source, action } = event;
  const ec2 = deps.clients.builder().ec2(source.region);
  const verb = action === 'share' ? 'Add' : 'Remove';
  const imageAccounts = event.shareAccountIds.filter((a) => !source.preexistingShares.launchPermission.includes(a));
  let imageGone = false;

  for (const batch of chunks(imageAccounts, ACCOUNTS_PER_CALL)) {
    try {
      await aws(
        `${action === 'share' ? 'Sharing' : 'Unsharing'} ${source.imageId} with ${batch.join(', ')}`,
        () =>
          ec2.send(
            new ModifyImageAttributeCommand({
              ImageId: source.imageId,
              LaunchPermission: { [verb]: batch.map((UserId) => ({ UserId })) },
            }),
          ),
        action === 'share' ? 'The pipeline role needs ec2:ModifyImageAttribute on the source image.' : undefined,
      );
    } catch (error) {
      // Nothing is left to revoke on an image that was deregistered during the run.
      if (action === 'unshare' && awsCode(error).startsWith('InvalidAMIID')) imageGone = true;
      else throw error;
    }
  }

  const snapshotIds: string[] = [];
  snapshots: for (const snapshotId of source.snapshotIds) {
    const preexisting = source.preexistingShares.createVolumePermission[snapshotId] ?? [];
    const accounts = event.shareAccountIds.filter((a) => !preexisting.includes(a));
    if (accounts.length === 0) continue;
    for (const batch of chunks(accounts, ACCOUNTS_PER_CALL)) {
      try {
        await aws(
          `${action === 'share' ? 'Sharing' : 'Unsharing'} snapshot ${snapshotId} with ${batch.join(', ')}`,
          () =>
            ec2.send(
              new ModifySnapshotAttributeCommand({
                SnapshotId: snapshotId,
                Attribute: 'createVolumePermission',
                OperationType: action === 'share' ? 'add' : 'remove',
                CreateVolumePermission: { [verb]: batch.map((UserId) => ({ UserId })) },
              }),
            ),
          action === 'share'
            ? 'The pipeline role needs ec2:ModifySnapshotAttribute on the source snapshots; snapshots encrypted with the AWS managed key cannot be shared.'
            : undefined,
        );
      } catch (error) {
        if (action === 'unshare' && awsCode(error) === 'InvalidSnapshot.NotFound') continue snapshots;
        throw error;
      }
    }
    snapshotIds.push(snapshotId);
  }
  logger.info(action === 'share' ? 'Source shared' : 'Source unshared', {
    imageId: source.imageId,
    accounts: imageAccounts.length,
    snapshots: snapshotIds.length,
  });
  return { action, imageId: source.imageId, accountIds: imageAccounts, snapshotIds, imageGone };
}

export const makeHandler = (deps: ModifyAttributesDeps = defaultDeps) =>
  lambdaHandler(
  'ModifyAttributes',
  (event) => {
    const e = event as { action?: unknown; executionName?: unknown } | null;
    return {
      action: typeof e?.action === 'string' ? e.action : undefined,
      executionName: typeof e?.executionName === 'string' ? e.executionName : undefined,
    };
  },
  (event) => modifyAttributes(parsePayload(modifyAttributesEventSchema, event, 'event'), deps),
);

export const handler = makeHandler();
