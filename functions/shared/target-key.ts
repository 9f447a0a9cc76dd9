/** The target's own KMS key: resolved to its ARN inside the target account, and refused when the product must not use it. */
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import type { Clients } from './client-factory';
import { aws, KmsKeyUnusableError } from './errors';
import type { TargetItem } from './plan';
import { where } from './target';

/** Resolve the target key to its ARN: it must exist, be enabled, symmetric, customer managed and the target account's own. */
export async function resolveTargetKey(item: Pick<TargetItem, 'target'>, clients: Clients): Promise<string> {
  const { accountId, region, kmsKey } = item.target;
  const out = await aws(`Describing KMS key ${kmsKey} in ${accountId}/${region}`, () => clients.kms(region).send(new DescribeKeyCommand({ KeyId: kmsKey })), {
    errors: {
      NotFoundException: (_, o) =>
        new KmsKeyUnusableError(
          `KMS key ${kmsKey} does not exist in account ${accountId}, region ${region}. Create it (templates/target-account.yml creates alias/ami-encryption) or fix "kmsKey" of this target.`,
          o,
        ),
      AccessDeniedException: (d, o) =>
        new KmsKeyUnusableError(
          `The target role cannot describe KMS key ${kmsKey} in ${accountId}/${region}: ${d.message}. ` +
            'Let the role use the key in the key policy (kms:DescribeKey, kms:CreateGrant, kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*).',
          o,
        ),
    },
  });
  const meta = out.KeyMetadata;
  const arn = meta?.Arn ?? '';
  const problems: string[] = [];
  if (meta?.AWSAccountId !== accountId) {
    problems.push(`it belongs to account ${meta?.AWSAccountId ?? 'unknown'}, not ${accountId}: every account encrypts with a key of its own`);
  }
  if (meta?.KeyManager === 'AWS') problems.push('it is an AWS managed key, which cannot be granted to the Auto Scaling role');
  if (meta?.KeyState !== 'Enabled') problems.push(`its state is ${meta?.KeyState ?? 'unknown'}; enable it (or cancel its deletion)`);
  if ((meta?.KeySpec ?? 'SYMMETRIC_DEFAULT') !== 'SYMMETRIC_DEFAULT' || (meta?.KeyUsage ?? 'ENCRYPT_DECRYPT') !== 'ENCRYPT_DECRYPT') {
    problems.push('EBS needs a symmetric ENCRYPT_DECRYPT key');
  }
  if (problems.length > 0) {
    throw new KmsKeyUnusableError(`KMS key ${kmsKey} (${arn || 'no ARN'}) in ${where(item)} cannot encrypt the copy: ${problems.join('; ')}.`);
  }
  return arn;
}
