/**
 * States: CreateKmsGrant. Serverless function: createGrant.
 * CreateKmsGrant: from inside the target account (the grant must be created by the account that owns the
 * Auto Scaling group), a named grant on the target key for that account's AWSServiceRoleForAutoScaling with the
 * operations EBS needs. The name derives from key and grantee, so a re-run finds the grant with ListGrants and
 * reuses it. Confirms the grant with ListGrants; returns grant ID and (for a new grant) its token.
 * Throws GrantFailedError, KmsKeyUnusableError (terminal); GrantNotYetPropagatedError, throttling, 5xx (retryable).
 */
import { CreateGrantCommand, type GrantListEntry, KMSClient } from '@aws-sdk/client-kms';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, type AwsErrorFactory, GrantFailedError, GrantNotYetPropagatedError, KEY_UNUSABLE, KmsKeyUnusableError } from './shared/errors';
import { autoScalingRoleArn, GRANT_OPERATIONS, grantName, listGrants } from './shared/grants';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { copyRefSchema, parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { targetClients } from './shared/target';

export const createGrantEventSchema = z.object({ item: targetItemSchema, copy: copyRefSchema });
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
export const defaultDeps: CreateGrantDeps = { clients: clientFactory({ kms: KMSClient }) };

/** How KMS's refusals read for a grant: the key, the caller's rights, the grantee. */
function grantErrors(item: TargetItem, keyArn: string, grantee: string): Record<string, AwsErrorFactory> {
  const keyUnusable: AwsErrorFactory = (d, o) =>
    new KmsKeyUnusableError(`KMS key ${keyArn} cannot take a grant: ${d.code}: ${d.message}. Enable the key or fix "kmsKey".`, o);
  const granteeRefused: AwsErrorFactory = (d, o) =>
    new GrantFailedError(
      `KMS refused grantee ${grantee}: ${d.code}: ${d.message}. Create the Auto Scaling service-linked role in account ${item.target.accountId} ` +
        '(aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com), then run again.',
      o,
    );
  return {
    ...Object.fromEntries(KEY_UNUSABLE.map((code) => [code, keyUnusable])),
    AccessDeniedException: (d, o) =>
      new GrantFailedError(
        `The target role in ${item.target.accountId} may not create grants on ${keyArn}: ${d.message}. ` +
          `Allow it kms:CreateGrant (and kms:ListGrants) in the key policy; the grant for ${grantee} must be created from inside account ${item.target.accountId}.`,
        o,
      ),
    InvalidArnException: granteeRefused,
    MalformedPolicyDocumentException: granteeRefused,
  };
}

export async function createGrant(event: CreateGrantEvent, deps: CreateGrantDeps = defaultDeps): Promise<GrantResult> {
  const { item } = event;
  const keyArn = event.copy.kmsKeyArn;
  const kms = targetClients(item, deps).kms(item.target.region);
  const grantee = autoScalingRoleArn(item.target.accountId, item.target.region);
  const name = grantName(keyArn, grantee);
  const covers = (g: GrantListEntry) =>
    g.Name === name && g.GranteePrincipal === grantee && GRANT_OPERATIONS.every((op) => g.Operations?.includes(op));
  const options = { errors: grantErrors(item, keyArn, grantee) };
  const existing = (await aws(`Listing the grants of ${keyArn}`, () => listGrants(kms, keyArn), options)).find(covers);
  if (existing?.GrantId) {
    logger.info('Existing grant reused', { grantId: existing.GrantId, kmsKeyArn: keyArn });
    return { grantId: existing.GrantId, grantToken: null, grantName: name, granteePrincipal: grantee, reused: true };
  }
  const created = await aws(
    `Granting ${grantee} the use of ${keyArn}`,
    () => kms.send(new CreateGrantCommand({ KeyId: keyArn, GranteePrincipal: grantee, Operations: GRANT_OPERATIONS, Name: name })),
    options,
  );
  if (!created.GrantId) throw new GrantFailedError(`CreateGrant on ${keyArn} returned no grant ID`);
  const grantId = created.GrantId;
  const confirmed = (await aws(`Confirming grant ${grantId} on ${keyArn}`, () => listGrants(kms, keyArn, grantId), options)).some((g) => g.GrantId === grantId);
  if (!confirmed) {
    // Grants are eventually consistent; the retry finds it by name instead of making another.
    throw new GrantNotYetPropagatedError(`Grant ${grantId} on ${keyArn} is not listed yet`);
  }
  logger.info('Grant created', { grantId, kmsKeyArn: keyArn });
  return { grantId, grantToken: created.GrantToken ?? null, grantName: name, granteePrincipal: grantee, reused: false };
}

export const makeHandler = (deps: CreateGrantDeps = defaultDeps) =>
  lambdaHandler('CreateKmsGrant', itemLogContext, (event) => createGrant(parsePayload(createGrantEventSchema, event, 'event'), deps));

export const handler = makeHandler();
