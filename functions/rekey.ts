/**
 * States: ResolveCurrentCopy, RevokeOldGrants. Serverless function: rekey.
 * ResolveCurrentCopy / RevokeOldGrants: the two steps a rekey adds to a target (mode "rekey"), inside the target
 * account and region through its role.
 * - current: the copy the target's parameter (publish.parameterName) points at becomes the source of the
 *   re-encrypting copy (CopyImage in the same account and region); when it is already on the target's key (a
 *   resumed rekey), the steps from the grant on go on with it as is. Returns { source, kmsKeyArn, newKeyArn, alreadyOnKey }.
 * - revoke: after the parameter switched, revokes the pipeline's Auto Scaling grants on every other key the
 *   lineage's copies use. Returns { revoked: [{ keyArn, grantId }] }.
 * Throws SourceImageNotFoundError (nothing published to rekey), KmsKeyUnusableError (the new key), AccessDeniedError;
 * throttling and 5xx are retryable.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient, RevokeGrantCommand } from '@aws-sdk/client-kms';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, KEY_UNUSABLE, PARAMETER_ABSENT, SourceImageNotFoundError } from './shared/errors';
import { autoScalingRoleArn, GRANT_NAME_PREFIX, listGrants } from './shared/grants';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { describeImage, keyOfImage, lineageFilters, ownImages, resolvedSourceOf } from './shared/images';
import { logger } from './shared/logger';
import { copyRefSchema, parsePayload, settingsSchema, targetItemSchema, targetPairSchema, type ResolvedSource } from './shared/plan';
import { targetClients, where } from './shared/target';
import { resolveTargetKey } from './shared/target-key';

/** The item of a rekey before its source is known. */
const rekeyItemSchema = z.object({ executionName: z.string().min(1), source: z.null(), target: targetPairSchema, settings: settingsSchema });

export const rekeyEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('current'), item: rekeyItemSchema }),
  z.object({
    action: z.literal('revoke'),
    item: targetItemSchema,
    copy: copyRefSchema,
    publish: z.object({ lineage: z.string().nullable() }),
  }),
]);
export type RekeyEvent = z.infer<typeof rekeyEventSchema>;
type RekeyItem = z.infer<typeof rekeyItemSchema>;

export interface CurrentCopy {
  source: ResolvedSource;
  /** The key the current copy is encrypted with (null when it cannot be told). */
  kmsKeyArn: string | null;
  newKeyArn: string;
  alreadyOnKey: boolean;
}

export interface RevokeResult {
  revoked: { keyArn: string; grantId: string }[];
}

export interface RekeyDeps {
  clients: ClientFactory;
}
export const defaultDeps: RekeyDeps = { clients: clientFactory({ ec2: EC2Client, kms: KMSClient, ssm: SSMClient }) };

export async function resolveCurrentCopy(item: RekeyItem, deps: RekeyDeps = defaultDeps): Promise<CurrentCopy> {
  const clients = targetClients(item, deps);
  const { region, accountId } = item.target;
  const name = item.settings.publish.parameterName ?? '';
  const imageId = await aws(`Reading ${name} in ${where(item)}`, async () => (await clients.ssm(region).send(new GetParameterCommand({ Name: name }))).Parameter?.Value, {
    fix: 'The target role needs ssm:GetParameter.',
    absentOn: PARAMETER_ABSENT,
  });
  if (!imageId) {
    throw new SourceImageNotFoundError(
      `Nothing to rekey in ${where(item)}: parameter ${name} does not exist there. Run the pipeline with publish.parameterName "${name}" first, or remove this target.`,
    );
  }
  const image = await describeImage(clients.ec2(region), imageId, `Describing the published copy ${imageId} in ${where(item)}`);
  if (!image || image.State !== 'available') {
    throw new SourceImageNotFoundError(`Parameter ${name} in ${where(item)} points at ${imageId}, which is ${image?.State ?? 'gone'}; publish a good copy first.`);
  }
  // The new key is checked as any target key is (exists, enabled, the account's own, customer managed).
  const newKeyArn = await resolveTargetKey(item, clients);
  const kmsKeyArn = keyOfImage(image);
  const source = resolvedSourceOf(image, { region, accountId }, { tags: {}, preexistingShares: { launchPermission: [], createVolumePermission: {} } });
  logger.info('Current copy resolved', { imageId, kmsKeyArn, newKeyArn });
  return { source, kmsKeyArn, newKeyArn, alreadyOnKey: kmsKeyArn === newKeyArn };
}

export async function revokeOldGrants(
  event: Extract<RekeyEvent, { action: 'revoke' }>,
  deps: RekeyDeps = defaultDeps,
): Promise<RevokeResult> {
  const { item, copy } = event;
  const lineage = event.publish.lineage;
  if (!lineage) return { revoked: [] };
  const clients = targetClients(item, deps);
  const { region, accountId } = item.target;
  const images = await ownImages(clients.ec2(region), lineageFilters(lineage), `Listing the lineage ${lineage} in ${where(item)}`);
  const oldKeys = [...new Set(images.map(keyOfImage).filter((k): k is string => k !== null && k !== copy.kmsKeyArn))];
  const grantee = autoScalingRoleArn(accountId, region);
  const revoked: RevokeResult['revoked'] = [];
  for (const keyArn of oldKeys) {
    // A key deleted or disabled since holds no grant the pipeline could still use.
    const grants = await aws(`Listing the grants of ${keyArn}`, () => listGrants(clients.kms(region), keyArn), {
      fix: 'The target role needs kms:ListGrants on its keys.',
      absentOn: KEY_UNUSABLE,
    });
    for (const grant of (grants ?? []).filter((g) => g.GranteePrincipal === grantee && g.Name?.startsWith(GRANT_NAME_PREFIX))) {
      await aws(
        `Revoking grant ${grant.GrantId ?? ''} on ${keyArn}`,
        () => clients.kms(region).send(new RevokeGrantCommand({ KeyId: keyArn, GrantId: grant.GrantId })),
        'The target role needs kms:RevokeGrant on its keys.',
      );
      revoked.push({ keyArn, grantId: grant.GrantId ?? '' });
    }
  }
  logger.info('Old grants revoked', { revoked: revoked.length, keys: oldKeys.length });
  return { revoked };
}

export async function rekey(event: RekeyEvent, deps: RekeyDeps = defaultDeps): Promise<CurrentCopy | RevokeResult> {
  return event.action === 'current' ? resolveCurrentCopy(event.item, deps) : revokeOldGrants(event, deps);
}

export const makeHandler = (deps: RekeyDeps = defaultDeps) =>
  lambdaHandler('Rekey', itemLogContext, (event) => rekey(parsePayload(rekeyEventSchema, event, 'event'), deps));

export const handler = makeHandler();
