/**
 * The preflight checks: what the write-up's team learned one failed launch at a time, asked up front.
 * `checkTarget` runs inside one target account and region (through its role); `checkBuilder` looks at the
 * builder account. Each check ends pass, warn or fail, a failure carrying the AWS error a run would hit and the fix.
 * The `doctor` command runs them all; the PreflightTarget state runs `checkTarget` before a target's copy.
 */
import { DescribeImagesCommand, DescribeSubnetsCommand, GetEbsDefaultKmsKeyIdCommand, GetEbsEncryptionByDefaultCommand } from '@aws-sdk/client-ec2';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, GetKeyPolicyCommand } from '@aws-sdk/client-kms';
import type { Clients } from './client-factory';
import { aws, awsErrorDetail, PipelineError, TargetRoleNotAssumableError, toPipelineError } from './errors';
import { missingActions } from './key-policy';
import type { TargetItem } from './plan';

/**
 * Throttling or a 5xx says nothing about the target: throw it (retryable) so the state machine retries the
 * preflight, rather than report a failed check that would fail the target.
 */
function rethrowTransient(error: unknown): void {
  const e = toPipelineError(error, 'Preflight check');
  if (e.retryable) throw e;
}

/** What the target checks read of an item: no source needed, so the doctor can run them when the source fails. */
export type CheckedTarget = Pick<TargetItem, 'executionName' | 'target' | 'settings'>;

export type Verdict = 'pass' | 'warn' | 'fail';

export interface Check {
  /** "source", "builder" or "ACCOUNT/REGION". */
  scope: string;
  check: string;
  verdict: Verdict;
  message: string;
  /** The AWS error a run would hit (fail) or that the check met (warn). */
  awsError?: string;
  fix?: string;
}

/** What the pipeline role needs on a target key outside EC2's own use of it. */
export const TARGET_KEY_ACTIONS = ['kms:DescribeKey', 'kms:CreateGrant', 'kms:ListGrants'] as const;
/** What EBS needs on the key, through EC2, as the caller. */
export const EBS_KEY_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:CreateGrant', 'kms:DescribeKey'] as const;
/** The documented lower bound of concurrent AMI copies per destination region. */
export const COPY_CONCURRENCY_LIMIT = 50;

/** The fix a translated error carries (aws(): `fix`, or the one `fixes` gives its code). */
const fixOf = (error: unknown): string | undefined => (error instanceof PipelineError ? error.fix : undefined);

const describe = (error: unknown) => {
  const { code, message } = error instanceof PipelineError && error.aws ? error.aws : awsErrorDetail(error);
  return `${code}: ${message}`;
};

const DESCRIBE_KEY_FIX = 'Let the target role describe the key (kms:DescribeKey in the key policy and the role policy).';

/** Resolve a key reference in a target account; the check of everything the copy needs from the key. */
async function keyCheck(item: CheckedTarget, clients: Clients, scope: string): Promise<{ check: Check; arn?: string }> {
  const { accountId, region, kmsKey } = item.target;
  try {
    const meta = (
      await aws(`Describing ${kmsKey} in ${scope}`, () => clients.kms(region).send(new DescribeKeyCommand({ KeyId: kmsKey })), {
        fix: DESCRIBE_KEY_FIX,
        fixes: { NotFoundException: `Create the key and its alias in ${region} (deploy templates/target-account.yml there) or fix "kmsKey".` },
      })
    ).KeyMetadata;
    const problems: string[] = [];
    if (meta?.AWSAccountId !== accountId) problems.push(`it belongs to account ${meta?.AWSAccountId ?? 'unknown'}: every account needs a key of its own`);
    if (meta?.KeyManager === 'AWS') problems.push('it is an AWS managed key, which cannot be granted to Auto Scaling');
    if (meta?.KeyState !== 'Enabled') problems.push(`it is ${meta?.KeyState ?? 'in an unknown state'}`);
    if ((meta?.KeySpec ?? 'SYMMETRIC_DEFAULT') !== 'SYMMETRIC_DEFAULT') problems.push(`it is ${meta?.KeySpec ?? ''}, EBS needs SYMMETRIC_DEFAULT`);
    if (problems.length > 0) {
      return {
        check: {
          scope, check: 'kms-key', verdict: 'fail', message: `${kmsKey} (${meta?.Arn ?? '?'}) cannot encrypt the copies: ${problems.join('; ')}`,
          awsError: 'the copy would end failed (Client.InvalidKMSKey.InvalidState)',
          fix: `Use an enabled, symmetric, customer managed key of account ${accountId} in ${region} (templates/target-account.yml makes one).`,
        },
      };
    }
    return { check: { scope, check: 'kms-key', verdict: 'pass', message: `${kmsKey} is ${meta?.Arn ?? ''}, enabled, symmetric, owned by ${accountId}` }, arn: meta?.Arn ?? '' };
  } catch (error) {
    rethrowTransient(error);
    return {
      check: {
        scope, check: 'kms-key', verdict: 'fail', message: `${kmsKey} cannot be used in ${accountId}/${region}`, awsError: describe(error),
        fix: fixOf(error) ?? DESCRIBE_KEY_FIX,
      },
    };
  }
}

async function keyPolicyCheck(item: CheckedTarget, clients: Clients, scope: string, keyArn: string): Promise<Check> {
  try {
    const policy = (await clients.kms(item.target.region).send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }))).Policy ?? '{}';
    const missing = missingActions(policy, item.target.accountId, [...TARGET_KEY_ACTIONS, ...EBS_KEY_ACTIONS]);
    if (missing.length === 0) return { scope, check: 'key-policy', verdict: 'pass', message: 'the key policy lets the account use the key and create grants' };
    return {
      scope, check: 'key-policy', verdict: 'fail', message: `the key policy of ${keyArn} does not let account ${item.target.accountId} use ${missing.join(', ')}`,
      awsError: 'AccessDeniedException (CreateGrant), or a copy that ends failed',
      fix: `Add a statement allowing ${missing.join(', ')} to arn:aws:iam::${item.target.accountId}:root (then IAM decides), as templates/target-account.yml does.`,
    };
  } catch (error) {
    return {
      scope, check: 'key-policy', verdict: 'warn', message: `cannot read the key policy of ${keyArn}; KMS has no dry run, so the copy will tell`,
      awsError: describe(error), fix: 'Allow the target role kms:GetKeyPolicy on the key to let this check run.',
    };
  }
}

async function serviceLinkedRoleCheck(item: CheckedTarget, clients: Clients, scope: string): Promise<Check> {
  const warn = (message: string, awsError: string): Check => ({
    scope, check: 'autoscaling-role', verdict: 'warn', message, awsError,
    fix: 'aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com (the target role may do it: templates/target-account.yml allows iam:CreateServiceLinkedRole for it)',
  });
  try {
    // IAM answers NoSuchEntity (the SDK's name for it: NoSuchEntityException) for a role that does not exist.
    const missing = await aws(
      `Reading AWSServiceRoleForAutoScaling in ${scope}`,
      async () => {
        await clients.iam(item.target.region).send(new GetRoleCommand({ RoleName: 'AWSServiceRoleForAutoScaling' }));
        return null;
      },
      { on: { 'NoSuchEntity*': (detail) => detail } },
    );
    if (missing) return warn('AWSServiceRoleForAutoScaling does not exist yet; Auto Scaling creates it on first use when the caller may', `${missing.code}: ${missing.message}`);
    return { scope, check: 'autoscaling-role', verdict: 'pass', message: 'AWSServiceRoleForAutoScaling exists' };
  } catch (error) {
    return warn('cannot read AWSServiceRoleForAutoScaling', describe(error));
  }
}

async function subnetCheck(item: CheckedTarget, clients: Clients, scope: string): Promise<Check> {
  if (item.settings.verify.mode === 'none') return { scope, check: 'subnet', verdict: 'pass', message: 'no launch check (verify.mode none)' };
  const ec2 = clients.ec2(item.target.region);
  try {
    const given = item.target.subnetId;
    const out = await ec2.send(
      new DescribeSubnetsCommand(given ? { SubnetIds: [given] } : { Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
    );
    const subnet = out.Subnets?.[0]?.SubnetId;
    if (subnet) return { scope, check: 'subnet', verdict: 'pass', message: `launch check in ${subnet}${given ? '' : ' (default VPC)'}` };
    return {
      scope, check: 'subnet', verdict: 'fail', message: 'no subnet for the launch check: none given and no default VPC',
      awsError: 'LaunchFailedError: no subnet', fix: `Give verify.subnetIds.${item.target.region} (or the target's subnetIds), or set verify.mode to "none".`,
    };
  } catch (error) {
    rethrowTransient(error);
    return {
      scope, check: 'subnet', verdict: 'fail', message: `subnet ${item.target.subnetId ?? '(default)'} is not usable in ${scope}`, awsError: describe(error),
      fix: `Give a subnet of account ${item.target.accountId} in ${item.target.region} (or one shared with it through RAM).`,
    };
  }
}

/** EBS encryption by default and its key: a disabled default key breaks every launch that names no key. */
export async function ebsDefaultCheck(clients: Clients, region: string, scope: string, forBuilder: boolean): Promise<Check> {
  const ec2 = clients.ec2(region);
  try {
    const enabled = (await ec2.send(new GetEbsEncryptionByDefaultCommand({}))).EbsEncryptionByDefault ?? false;
    if (!enabled) {
      return forBuilder
        ? { scope, check: 'ebs-default', verdict: 'pass', message: 'EBS encryption by default is off: images built here are unencrypted and shareable' }
        : { scope, check: 'ebs-default', verdict: 'pass', message: 'EBS encryption by default is off; the copies are encrypted with the target key anyway' };
    }
    let keyId: string | undefined;
    try {
      keyId = (await ec2.send(new GetEbsDefaultKmsKeyIdCommand({}))).KmsKeyId;
    } catch (error) {
      return { scope, check: 'ebs-default', verdict: 'warn', message: 'EBS encryption by default is on; its default key could not be read', awsError: describe(error) };
    }
    const meta = keyId ? (await clients.kms(region).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata : undefined;
    if (forBuilder && (meta?.KeyManager === 'AWS' || !keyId || keyId.includes('alias/aws/ebs'))) {
      return {
        scope, check: 'ebs-default', verdict: 'warn', message: 'EBS encryption by default is on with the AWS managed key: new images built here cannot be shared',
        awsError: "InvalidParameter: Snapshots encrypted with the AWS Managed CMK can't be shared.",
        fix: 'Turn EBS encryption by default off in the builder account, or make a customer managed key its default (aws ec2 modify-ebs-default-kms-key-id).',
      };
    }
    if (meta && meta.KeyState !== 'Enabled') {
      return {
        scope, check: 'ebs-default', verdict: 'warn', message: `the EBS default key ${meta.Arn ?? keyId ?? ''} is ${meta.KeyState ?? 'unusable'}: launches that name no key will fail`,
        awsError: 'Client.InvalidKMSKey.InvalidState', fix: 'Enable the default key or choose another (aws ec2 modify-ebs-default-kms-key-id).',
      };
    }
    return { scope, check: 'ebs-default', verdict: 'pass', message: `EBS encryption by default is on with ${meta?.Arn ?? keyId ?? 'its default key'}` };
  } catch (error) {
    return { scope, check: 'ebs-default', verdict: 'warn', message: 'cannot read the EBS encryption-by-default settings', awsError: describe(error) };
  }
}

async function copyHeadroomCheck(item: CheckedTarget, clients: Clients, scope: string): Promise<Check> {
  try {
    const out = await clients.ec2(item.target.region).send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'state', Values: ['pending'] }] }));
    const pending = out.Images?.length ?? 0;
    const verdict: Verdict = pending >= COPY_CONCURRENCY_LIMIT * 0.8 ? 'warn' : 'pass';
    return {
      scope, check: 'copy-headroom', verdict,
      message: `${pending} image(s) pending in ${item.target.region} against a concurrent-copy limit of at least ${COPY_CONCURRENCY_LIMIT}`,
      ...(verdict === 'warn' ? { awsError: 'ResourceLimitExceeded (retried by the state machine)', fix: 'Lower maxConcurrency or wait for the pending copies.' } : {}),
    };
  } catch (error) {
    return { scope, check: 'copy-headroom', verdict: 'warn', message: 'cannot count pending images', awsError: describe(error) };
  }
}

/** Every check of one target account and region, through `clients` (the target role). */
export async function checkTarget(item: CheckedTarget, clients: Clients): Promise<Check[]> {
  const scope = `${item.target.accountId}/${item.target.region}`;
  try {
    await clients.kms(item.target.region).config.credentials();
  } catch (error) {
    rethrowTransient(error);
    const e = error instanceof TargetRoleNotAssumableError ? error : undefined;
    return [{
      scope, check: 'target-role', verdict: 'fail', message: e?.message ?? `cannot act in ${item.target.accountId}: ${describe(error)}`,
      awsError: describe(error), fix: `Deploy templates/target-account.yml in ${item.target.accountId} and check targetRoleName/externalId.`,
    }];
  }
  const checks: Check[] = [{ scope, check: 'target-role', verdict: 'pass', message: `assumed ${item.settings.targetRoleName} in ${item.target.accountId}` }];
  const key = await keyCheck(item, clients, scope);
  checks.push(key.check);
  if (key.arn) checks.push(await keyPolicyCheck(item, clients, scope, key.arn));
  checks.push(await serviceLinkedRoleCheck(item, clients, scope));
  checks.push(await subnetCheck(item, clients, scope));
  checks.push(await ebsDefaultCheck(clients, item.target.region, scope, false));
  checks.push(await copyHeadroomCheck(item, clients, scope));
  return checks;
}
