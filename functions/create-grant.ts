/**
 * CreateKmsGrant: from inside the target account (the grant must be created by the account that owns the
 * Auto Scaling group), a named grant on the target key for that account's AWSServiceRoleForAutoScaling with the
 * operations EBS needs. The name derives from key and grantee, so a re-run finds the grant with ListGrants and
 * reuses it. Confirms the grant with ListGrants; returns grant ID and (for a new grant) its token.
 * Throws GrantFailedError, KmsKeyUnusableError (terminal); GrantNotYetPropagatedError, throttling, 5xx (retryable).
 */
import { CreateGrantCommand, type GrantListEntry, type GrantOperation, KMSClient, ListGrantsCommand } from '@aws-sdk/client-kms';
import * as z from 'zod';
import { clientFactory, partitionOf, type ClientFactory } from './shared/client-factory';
import { awsCode, GrantFailedError, GrantNotYetPropagatedError, KmsKeyUnusableError, toPipelineError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { digest } from './shared/tags';
import { targetClients } from './shared/target';

export const GRANT_OPERATIONS: GrantOperation[] = [
  'Encrypt',
  'Decrypt',
  'ReEncryptFrom',
  'ReEncryptTo',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'DescribeKey',
  'CreateGrant',
];

export const createGrantEventSchema = z.object({
  item: targetItemSchema,
  copy: z.object({ imageId: z.string(), kmsKeyArn: z.string() }),
});
export type CreateGrantEvent = z.infer<typeof createGrantEventSchema>;

export interface GrantResult {
  grantId: string;
  grantToken: string | null;
  grantName: string;
  granteePrincipal: string;
  reused: boolean;
}

export interface CreateGrantDeps {
  clients: ClientFactory;
}
export const defaultDeps: CreateGrantDeps = { clients: /* @__PURE__ */ clientFactory({ kms: KMSClient }) };

export function autoScalingRoleArn(accountId: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
}

export function grantName(kmsKeyArn: string, grantee: string): string {
  return `ami-pipeline-autoscaling-${digest(kmsKeyArn, grantee).slice(0, 16)}`;
}

async function listGrants(kms: KMSClient, keyArn: string, grantId?: string): Promise<GrantListEntry[]> {
  const grants: GrantListEntry[] = [];
  let marker: string | undefined;
  do {
    const out = await kms.send(new ListGrantsCommand({ KeyId: keyArn, GrantId: grantId, Marker: marker }));
    grants.push(...(out.Grants ?? []));
    marker = out.Truncated ? out.NextMarker : undefined;
  } while (marker);
  return grants;
}

function grantFailure(error: unknown, item: TargetItem, keyArn: string, grantee: string): Error {
  const code = awsCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const aws = { code, message };
  if (code === 'NotFoundException' || code === 'DisabledException' || code === 'KMSInvalidStateException') {
    return new KmsKeyUnusableError(`KMS key ${keyArn} cannot take a grant: ${code}: ${message}. Enable the key or fix "kmsKey".`, { cause: error, aws });
  }
  if (code === 'AccessDeniedException') {
    return new GrantFailedError(
      `The target role in ${item.target.accountId} may not create grants on ${keyArn}: ${message}. ` +
        `Allow it kms:CreateGrant (and kms:ListGrants) in the key policy; the grant for ${grantee} must be created from inside account ${item.target.accountId}.`,
      { cause: error, aws },
    );
  }
  if (code === 'InvalidArnException' || code === 'MalformedPolicyDocumentException') {
    return new GrantFailedError(
      `KMS refused grantee ${grantee}: ${code}: ${message}. Create the Auto Scaling service-linked role in account ${item.target.accountId} ` +
        '(aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com), then run again.',
      { cause: error, aws },
    );
  }
  return toPipelineError(error, `Granting ${grantee} the use of ${keyArn}`);
}

export async function createGrant(event: CreateGrantEvent, deps: CreateGrantDeps = defaultDeps): Promise<GrantResult> {
  const { item } = event;
  const keyArn = event.copy.kmsKeyArn;
  const kms = targetClients(item, deps).kms(item.target.region);
  const grantee = autoScalingRoleArn(item.target.accountId, item.target.region);
  const name = grantName(keyArn, grantee);
  const covers = (g: GrantListEntry) =>
    g.Name === name && g.GranteePrincipal === grantee && GRANT_OPERATIONS.every((op) => g.Operations?.includes(op));
  try {
    const existing = (await listGrants(kms, keyArn)).find(covers);
    if (existing?.GrantId) {
      logger.info('Existing grant reused', { grantId: existing.GrantId, kmsKeyArn: keyArn });
      return { grantId: existing.GrantId, grantToken: null, grantName: name, granteePrincipal: grantee, reused: true };
    }
    const created = await kms.send(
      new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: grantee, Operations: GRANT_OPERATIONS, Name: name }),
    );
    if (!created.GrantId) throw new GrantFailedError(`CreateGrant on ${keyArn} returned no grant ID`);
    const confirmed = (await listGrants(kms, keyArn, created.GrantId)).some((g) => g.GrantId === created.GrantId);
    if (!confirmed) {
      // Grants are eventually consistent; the retry finds it by name instead of making another.
      throw new GrantNotYetPropagatedError(`Grant ${created.GrantId} on ${keyArn} is not listed yet`);
    }
    logger.info('Grant created', { grantId: created.GrantId, kmsKeyArn: keyArn });
    return { grantId: created.GrantId, grantToken: created.GrantToken ?? null, grantName: name, granteePrincipal: grantee, reused: false };
  } catch (error) {
    if (error instanceof GrantNotYetPropagatedError || error instanceof GrantFailedError) throw error;
    throw grantFailure(error, item, keyArn, grantee);
  }
}

export const makeHandler = /* @__NO_SIDE_EFFECTS__ */ (deps: CreateGrantDeps = defaultDeps) =>
  lambdaHandler('CreateKmsGrant', itemLogContext, (event) =>
  createGrant(parsePayload(createGrantEventSchema, event, 'event'), deps),
);

export const handler = makeHandler();
