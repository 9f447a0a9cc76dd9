/**
 * States: ShareSource, UnshareSource, UnshareAfterFailure. Serverless function: modifyAttributes.
 * ShareSource / UnshareSource / UnshareAfterFailure: shares the source image (launchPermission) and its snapshots
 * (createVolumePermission) with the run's target accounts through the share ledger (functions/shared/ledger.ts): the
 * run records its claim as tags on the image and each snapshot before adding a permission. Unsharing revokes this
 * run's claim and that of every execution of the source that is no longer running (states:DescribeExecution); a
 * permission given by hand, or one a running execution still claims, stays and the result says why.
 * Takes { action: "share" | "unshare", executionName, executionArn, source, shareAccountIds }.
 * Returns for share { accountIds added, snapshotIds, handShared }; for unshare the RevokeResult (the manifest's
 * sourceShare). Throws ShareLedgerFullError, AccessDeniedError, AwsRequestFailedError (terminal) or the retryable
 * throttling/5xx errors.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { describeExecutionLiveness, type Liveness } from './shared/executions';
import { lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, resolvedSourceSchema } from './shared/plan';
import { revokeShares, shareSource, type RevokeResult } from './shared/share';

export const modifyAttributesEventSchema = z.object({
  action: z.enum(['share', 'unshare']),
  executionName: z.string(),
  executionArn: z.string(),
  source: resolvedSourceSchema,
  shareAccountIds: z.array(z.string()),
});
export type ModifyAttributesEvent = z.infer<typeof modifyAttributesEventSchema>;

export interface ShareSourceResult {
  action: 'share';
  imageId: string;
  /** Accounts given launch permission by this call. */
  accountIds: string[];
  /** Snapshots this run claimed. */
  snapshotIds: string[];
  /** Target accounts the image was already shared with by hand: left as they are. */
  handShared: string[];
}

export type UnshareSourceResult = { action: 'unshare'; imageId: string } & RevokeResult;

export interface ModifyAttributesDeps {
  clients: ClientFactory;
  /** Whether another execution named in the ledger still runs (default: states:DescribeExecution). */
  liveness?: Liveness;
}
export const defaultDeps: ModifyAttributesDeps = { clients: clientFactory({ ec2: EC2Client, sfn: SFNClient }) };

export async function modifyAttributes(
  event: ModifyAttributesEvent,
  deps: ModifyAttributesDeps = defaultDeps,
): Promise<ShareSourceResult | UnshareSourceResult> {
  const { source } = event;
  const ec2 = deps.clients.builder().ec2(source.region);
  if (event.action === 'share') {
    const shared = await shareSource(ec2, source, event.shareAccountIds, { name: event.executionName, arn: event.executionArn });
    logger.info('Source shared', { imageId: source.imageId, accounts: shared.accountIds.length, handShared: shared.handShared.length });
    return { action: 'share', imageId: source.imageId, ...shared };
  }
  const liveness = deps.liveness ?? describeExecutionLiveness((region) => deps.clients.builder().sfn(region));
  const revoked = await revokeShares(ec2, source, { own: event.executionName, liveness });
  logger.info('Source unshared', {
    imageId: source.imageId,
    accounts: revoked.accountIds.length,
    staleExecutions: revoked.executions.length,
    left: revoked.left.length,
  });
  return { action: 'unshare', imageId: source.imageId, ...revoked };
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
