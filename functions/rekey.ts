/**
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
import { DescribeImagesCommand, EC2Client, type Image } from '@aws-sdk/client-ec2';
import { type GrantListEntry, KMSClient, ListGrantsCommand, RevokeGrantCommand } from '@aws-sdk/client-kms';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, awsCode, SourceImageNotFoundError, toPipelineError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { imageSizeGiB, parsePayload, settingsSchema, targetItemSchema, targetPairSchema, type ResolvedSource } from './shared/plan';
import { MANAGED_BY, TAGS } from './shared/tags';
import { resolveTargetKey } from './copy-encrypt';
import { targetClients } from './shared/target';
import { autoScalingRoleArn } from './create-grant';

/** The item of a rekey before its source is known. */
const rekeyItemSchema = z.object({ executionName: z.string().min(1), source: z.null(), target: targetPairSchema, settings: settingsSchema });

export const rekeyEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('current'), item: rekeyItemSchema }),
  z.object({
    action: z.literal('revoke'),
    item: targetItemSchema,
    copy: z.object({ imageId: z.string(), kmsKeyArn: z.string() }),
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

const where = (item: Pick<RekeyItem, 'target'>) => `${item.target.accountId}/${item.target.region}`;
const keyOfImage = (image: Image) =>
  image.Tags?.find((t) => t.Key === TAGS.kmsKey)?.Value ?? image.BlockDeviceMappings?.find((m) => m.Ebs?.KmsKeyId)?.Ebs?.KmsKeyId ?? null;

export async function resolveCurrentCopy(item: RekeyItem, deps: RekeyDeps = defaultDeps): Promise<CurrentCopy> {
  const clients = targetClients(item, deps);
  const { region, accountId } = item.target;
  const name = item.settings.publish.parameterName ?? '';
  let imageId: string | undefined;
  try {
    imageId = (await clients.ssm(region).send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (error) {
    if (awsCode(error) !== 'ParameterNotFound') throw toPipelineError(error, `Reading ${name} in ${where(item)}`, 'The target role needs ssm:GetParameter.');
  }
  if (!imageId) {
    throw new SourceImageNotFoundError(
      `Nothing to rekey in ${where(item)}: parameter ${name} does not exist there. Run the pipeline with publish.parameterName "${name}" first, or remove this target.`,
    );
  }
  const image = (
    await aws(`Describing the published copy ${imageId} in ${where(item)}`, () => clients.ec2(region).send(new DescribeImagesCommand({ ImageIds: [imageId] })))
  ).Images?.[0];
  if (!image || image.State !== 'available') {
    throw new SourceImageNotFoundError(`Parameter ${name} in ${where(item)} points at ${imageId}, which is ${image?.State ?? 'gone'}; publish a good copy first.`);
  }
  // The new key is checked as any target key is (exists, enabled, the account's own, customer managed).
  const newKeyArn = await resolveTargetKey(item, clients);
  const kmsKeyArn = keyOfImage(image);
  const source: ResolvedSource = {
    imageId,
    region,
    accountId,
    name: image.Name ?? imageId,
    architecture: image.Architecture ?? 'x86_64',
    rootDeviceName: image.RootDeviceName ?? '/dev/xvda',
    snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
    sizeGiB: imageSizeGiB(image.BlockDeviceMappings),
    tags: {},
    preexistingShares: { launchPermission: [], createVolumePermission: {} },
  };
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
  const images = await aws(`Listing the lineage ${lineage} in ${where(item)}`, () =>
    clients.ec2(region).send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [
          { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] },
          { Name: `tag:${TAGS.lineage}`, Values: [lineage] },
        ],
      }),
    ),
  );
  const oldKeys = [...new Set((images.Images ?? []).map(keyOfImage).filter((k): k is string => k !== null && k !== copy.kmsKeyArn))];
  const grantee = autoScalingRoleArn(accountId, region);
  const revoked: RevokeResult['revoked'] = [];
  for (const keyArn of oldKeys) {
    let grants: GrantListEntry[];
    try {
      grants = (await clients.kms(region).send(new ListGrantsCommand({ KeyId: keyArn }))).Grants ?? [];
    } catch (error) {
      // A key deleted or disabled since holds no grant the pipeline could still use.
      if (['NotFoundException', 'KMSInvalidStateException', 'DisabledException'].includes(awsCode(error))) continue;
      throw toPipelineError(error, `Listing the grants of ${keyArn}`, 'The target role needs kms:ListGrants on its keys.');
    }
    for (const grant of grants.filter((g) => g.GranteePrincipal === grantee && g.Name?.startsWith('ami-pipeline-autoscaling-'))) {
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
