import { EC2Client, DescribeImagesCommand, DescribeSubnetsCommand, GetEbsDefaultKmsKeyIdCommand, GetEbsEncryptionByDefaultCommand } from '@aws-sdk/client-ec2';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { preflightTarget } from '../../functions/preflight';
import type { ClientFactory } from '../../functions/shared/clients';
import { TargetRoleNotAssumableError } from '../../functions/shared/errors';
import { checkTarget, ebsDefaultCheck, type Check } from '../../functions/shared/preflight';
import { ACCOUNT_A, awsError, item, KEY_A_EU, rejection, testClients } from '../support/fixtures';

const ec2 = mockClient(EC2Client);
const kms = mockClient(KMSClient);
const iam = mockClient(IAMClient);

const ROOT_POLICY = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT_A}:root` }, Action: 'kms:*', Resource: '*' }] });

function healthy(): void {
  kms.on(DescribeKeyCommand).resolves({
    KeyMetadata: { KeyId: 'k', Arn: KEY_A_EU, AWSAccountId: ACCOUNT_A, KeyState: 'Enabled', KeyManager: 'CUSTOMER', KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' },
  });
  kms.on(GetKeyPolicyCommand).resolves({ Policy: ROOT_POLICY });
  iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'AWSServiceRoleForAutoScaling', Arn: 'arn', Path: '/', RoleId: 'r', CreateDate: new Date() } });
  ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0123456789abcdef0' }] });
  ec2.on(GetEbsEncryptionByDefaultCommand).resolves({ EbsEncryptionByDefault: false });
  ec2.on(DescribeImagesCommand).resolves({ Images: [] });
}

const verdicts = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.check, c.verdict]));
const find = (checks: Check[], name: string) => checks.find((c) => c.check === name);

beforeEach(() => {
  ec2.reset();
  kms.reset();
  iam.reset();
  healthy();
});

describe('the preflight of a target', () => {
  it('passes a correctly bootstrapped account and region', async () => {
    const checks = await checkTarget(item(), testClients().builder());
    expect(verdicts(checks)).toEqual({
      'target-role': 'pass', 'kms-key': 'pass', 'key-policy': 'pass', 'autoscaling-role': 'pass', subnet: 'pass', 'ebs-default': 'pass', 'copy-headroom': 'pass',
    });
    expect(kms).toHaveReceivedCommandWith(GetKeyPolicyCommand, { KeyId: KEY_A_EU, PolicyName: 'default' });
    expect(iam).toHaveReceivedCommandWith(GetRoleCommand, { RoleName: 'AWSServiceRoleForAutoScaling' });
  });

  it('fails a missing key with the AWS error and the template to deploy', async () => {
    kms.on(DescribeKeyCommand).rejects(awsError('NotFoundException', `Alias arn:aws:kms:eu-west-1:${ACCOUNT_A}:alias/ami-encryption is not found.`));
    const key = find(await checkTarget(item(), testClients().builder()), 'kms-key');
    expect(key?.verdict).toBe('fail');
    expect(key?.awsError).toContain('NotFoundException');
    expect(key?.fix).toContain('templates/target-account.yml');
  });

  it.each([
    ['a disabled key', { KeyState: 'Disabled' }, 'Disabled'],
    ['a key pending deletion', { KeyState: 'PendingDeletion' }, 'PendingDeletion'],
    ['a key of another account', { AWSAccountId: '999999999999' }, 'a key of its own'],
    ['an AWS managed key', { KeyManager: 'AWS' }, 'AWS managed'],
    ['an asymmetric key', { KeySpec: 'RSA_2048' }, 'SYMMETRIC_DEFAULT'],
  ] as const)('fails %s', async (_name, meta, phrase) => {
    kms.on(DescribeKeyCommand).resolves({
      KeyMetadata: { KeyId: 'k', Arn: KEY_A_EU, AWSAccountId: ACCOUNT_A, KeyState: 'Enabled', KeyManager: 'CUSTOMER', KeySpec: 'SYMMETRIC_DEFAULT', ...meta },
    });
    const key = find(await checkTarget(item(), testClients().builder()), 'kms-key');
    expect(key?.verdict).toBe('fail');
    expect(key?.message).toContain(phrase);
  });

  it('fails a key policy that does not let the account create grants', async () => {
    kms.on(GetKeyPolicyCommand).resolves({
      Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT_A}:root` }, Action: ['kms:Describe*', 'kms:Decrypt'], Resource: '*' }] }),
    });
    const policy = find(await checkTarget(item(), testClients().builder()), 'key-policy');
    expect(policy?.verdict).toBe('fail');
    expect(policy?.message).toContain('kms:CreateGrant');
    expect(policy?.fix).toContain(`arn:aws:iam::${ACCOUNT_A}:root`);
  });

  it('warns when the key policy cannot be read (KMS has no dry run)', async () => {
    kms.on(GetKeyPolicyCommand).rejects(awsError('AccessDeniedException', 'User is not authorized to perform: kms:GetKeyPolicy'));
    expect(find(await checkTarget(item(), testClients().builder()), 'key-policy')?.verdict).toBe('warn');
  });

  it('warns about a missing Auto Scaling service-linked role and says how to create it', async () => {
    iam.on(GetRoleCommand).rejects(awsError('NoSuchEntity', 'The role with name AWSServiceRoleForAutoScaling cannot be found.', 404));
    const role = find(await checkTarget(item(), testClients().builder()), 'autoscaling-role');
    expect(role?.verdict).toBe('warn');
    expect(role?.fix).toContain('create-service-linked-role --aws-service-name autoscaling.amazonaws.com');
  });

  it.each([
    ['the subnet', () => ec2.on(DescribeSubnetsCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))],
    ['the key', () => kms.on(DescribeKeyCommand).rejects(awsError('ThrottlingException', 'Rate exceeded', 400))],
  ])('throws a throttled look at %s (retryable) instead of failing the target', async (_, throttle) => {
    throttle();
    const error = await checkTarget(item(), testClients().builder()).then(() => undefined, (e: unknown) => e as { name: string; retryable: boolean });
    expect(error?.name).toBe('AwsThrottlingError');
    expect(error?.retryable).toBe(true);
  });

  it('fails when there is no subnet for the launch check, and skips the subnet without one', async () => {
    ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [] });
    expect(find(await checkTarget(item(), testClients().builder()), 'subnet')?.verdict).toBe('fail');
    const none = item({}, { verify: { mode: 'none', instanceType: null, timeoutMinutes: 15 } });
    expect(find(await checkTarget(none, testClients().builder()), 'subnet')?.verdict).toBe('pass');
  });

  it('warns when the EBS default key is disabled', async () => {
    ec2.on(GetEbsEncryptionByDefaultCommand).resolves({ EbsEncryptionByDefault: true });
    ec2.on(GetEbsDefaultKmsKeyIdCommand).resolves({ KmsKeyId: KEY_A_EU });
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: KEY_A_EU, AWSAccountId: ACCOUNT_A, KeyState: 'Disabled', KeyManager: 'CUSTOMER' } });
    const check = await ebsDefaultCheck(testClients().builder(), 'eu-west-1', 'x', false);
    expect(check.verdict).toBe('warn');
    expect(check.message).toContain('Disabled');
  });

  it('warns the builder account whose encryption by default uses the AWS managed key', async () => {
    ec2.on(GetEbsEncryptionByDefaultCommand).resolves({ EbsEncryptionByDefault: true });
    ec2.on(GetEbsDefaultKmsKeyIdCommand).resolves({ KmsKeyId: 'alias/aws/ebs' });
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: 'arn:aws:kms:eu-west-1:999999999999:key/aws', KeyManager: 'AWS', KeyState: 'Enabled' } });
    const check = await ebsDefaultCheck(testClients().builder(), 'eu-west-1', 'builder', true);
    expect(check.verdict).toBe('warn');
    expect(check.awsError).toContain("Snapshots encrypted with the AWS Managed CMK can't be shared");
  });

  it('warns when the region is close to its concurrent-copy limit', async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: Array.from({ length: 45 }, (_, i) => ({ ImageId: `ami-${i}`, State: 'pending' })) });
    const headroom = find(await checkTarget(item(), testClients().builder()), 'copy-headroom');
    expect(headroom?.verdict).toBe('warn');
    expect(ec2).toHaveReceivedCommandWith(DescribeImagesCommand, { Owners: ['self'], Filters: [{ Name: 'state', Values: ['pending'] }] });
  });
});

describe('the PreflightTarget step', () => {
  it('fails the target with every failed check and its fix', async () => {
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: KEY_A_EU, AWSAccountId: ACCOUNT_A, KeyState: 'Disabled', KeyManager: 'CUSTOMER' } });
    ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [] });
    const error = (await preflightTarget(item(), { clients: testClients() }).then(
      () => new Error('resolved'),
      (e: unknown) => e as Error,
    ));
    expect(error.name).toBe('PreflightFailedError');
    expect(error.message).toContain('kms-key');
    expect(error.message).toContain('subnet');
    expect(error.message).toContain('Fix:');
  });

  it('returns the warnings when nothing fails', async () => {
    iam.on(GetRoleCommand).rejects(awsError('NoSuchEntity', 'The role with name AWSServiceRoleForAutoScaling cannot be found.', 404));
    const result = await preflightTarget(item(), { clients: testClients() });
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain('AWSServiceRoleForAutoScaling');
  });

  it('reports an account it cannot enter as TargetRoleNotAssumableError', async () => {
    const locked = testClients().builder();
    const unassumable: ClientFactory = {
      builder: () => locked,
      target: () => ({
        ...locked,
        kms: () => ({ config: { credentials: () => Promise.reject(new TargetRoleNotAssumableError('Cannot assume arn:aws:iam::111111111111:role/AmiPipelineTarget')) } }) as unknown as KMSClient,
      }),
    };
    await expect(preflightTarget(item(), { clients: unassumable })).rejects.toMatchObject({ name: 'TargetRoleNotAssumableError' });
  });

  it('waits for a new account whose role or key its StackSet has not deployed yet (TargetNotYetDeployedError), and only in a new-account run', async () => {
    const locked = testClients().builder();
    const unassumable: ClientFactory = {
      builder: () => locked,
      target: () => ({
        ...locked,
        kms: () => ({
          config: { credentials: () => Promise.reject(new TargetRoleNotAssumableError('Cannot assume it', { aws: { code: 'AccessDenied', message: 'not authorized' } })) },
        }) as unknown as KMSClient,
      }),
    };
    const newAccount = item({}, { awaitDeployment: true });
    const role = await rejection(preflightTarget(newAccount, { clients: unassumable }));
    expect(role).toMatchObject({ name: 'TargetNotYetDeployedError', retryable: true });
    expect(role.message).toContain('role AmiPipelineTarget cannot be assumed yet (AccessDenied)');
    expect(role.message).toContain('StackSet');
    expect(role.message).toContain('about an hour');

    kms.on(DescribeKeyCommand).rejects(awsError('NotFoundException', `Alias arn:aws:kms:eu-west-1:${ACCOUNT_A}:alias/ami-encryption is not found.`));
    const key = await rejection(preflightTarget(newAccount, { clients: testClients() }));
    expect(key).toMatchObject({ name: 'TargetNotYetDeployedError' });
    expect(key.message).toContain('key alias/ami-encryption does not exist yet in eu-west-1');
    await expect(preflightTarget(item(), { clients: testClients() })).rejects.toMatchObject({ name: 'PreflightFailedError' });
  });
});
