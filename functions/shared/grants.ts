/**
 * The Auto Scaling grant on a target key: who it is for, what it allows, its deterministic name, and listing a key's
 * grants through every page. CreateKmsGrant makes it, RevokeOldGrants (rekey) revokes it, the doctor simulates it.
 */
import { type GrantListEntry, type GrantOperation, type KMSClient, paginateListGrants } from '@aws-sdk/client-kms';
import { partitionOf } from './client-factory';
import { digest } from './tags';

/** What EBS needs on the key for Auto Scaling to launch from an encrypted image (AWS: "Required KMS key policy for use with encrypted volumes"). */
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

/** Every grant the pipeline creates is named with this prefix (grantName). */
export const GRANT_NAME_PREFIX = 'ami-pipeline-autoscaling-';

/** The Auto Scaling service-linked role of an account: the grantee. */
export function autoScalingRoleArn(accountId: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
}

/** Deterministic per key and grantee, so a re-run finds the grant it made. */
export function grantName(kmsKeyArn: string, grantee: string): string {
  return `${GRANT_NAME_PREFIX}${digest(kmsKeyArn, grantee).slice(0, 16)}`;
}

/** Every grant on a key (optionally only `grantId`), through all the pages ListGrants returns. */
export async function listGrants(kms: KMSClient, keyArn: string, grantId?: string): Promise<GrantListEntry[]> {
  const grants: GrantListEntry[] = [];
  for await (const page of paginateListGrants({ client: kms }, { KeyId: keyArn, GrantId: grantId })) grants.push(...(page.Grants ?? []));
  return grants;
}
