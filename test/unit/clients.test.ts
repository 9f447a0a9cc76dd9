import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { clientFactory } from '../../functions/shared/client-factory';
import { createClientFactory, partitionOf, roleArn, sessionNameFor, type TargetAccess } from '../../functions/shared/clients';
import { ACCOUNT_A, ACCOUNT_B, awsError, rejection } from '../support/fixtures';

const stsMock = mockClient(STSClient);
const ec2Mock = mockClient(EC2Client);

const ROLE = 'AmiPipelineTarget';
const access = (overrides: Partial<TargetAccess> = {}): TargetAccess => ({
  accountId: ACCOUNT_A,
  roleName: ROLE,
  sessionName: 'ami-pipeline-exec-1',
  ...overrides,
});

function assumedCredentials(accessKeyId: string, expiresInMs = 3_600_000) {
  return {
    Credentials: {
      AccessKeyId: accessKeyId,
      SecretAccessKey: `secret-of-${accessKeyId}`,
      SessionToken: `token-of-${accessKeyId}`,
      Expiration: new Date(Date.now() + expiresInMs),
    },
    AssumedRoleUser: { AssumedRoleId: `AROAEXAMPLE:ami-pipeline-exec-1`, Arn: `arn:aws:sts::${ACCOUNT_A}:assumed-role/${ROLE}/ami-pipeline-exec-1` },
  };
}

beforeEach(() => {
  stsMock.reset();
  ec2Mock.reset();
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
});

describe('createClientFactory', () => {
  it('assumes the target role once for every client and region of the same account', async () => {
    stsMock.on(AssumeRoleCommand).resolves(assumedCredentials('ASIAACCOUNTA'));
    const factory = createClientFactory('eu-west-1');

    const euEc2 = factory.target(access()).ec2('eu-west-1');
    const usEc2 = factory.target(access()).ec2('us-east-1');
    const euKms = factory.target(access()).kms('eu-west-1');
    // aws-sdk-client-mock replaces send() and skips the signing middleware, so credentials are resolved directly.
    await euEc2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    const resolved = [await euEc2.config.credentials(), await usEc2.config.credentials(), await euKms.config.credentials()];

    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 1);
    expect(stsMock).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: `arn:aws:iam::${ACCOUNT_A}:role/${ROLE}`,
      RoleSessionName: 'ami-pipeline-exec-1',
      DurationSeconds: 3600,
    });
    for (const credentials of resolved) {
      expect(credentials).toMatchObject({ accessKeyId: 'ASIAACCOUNTA', secretAccessKey: 'secret-of-ASIAACCOUNTA', sessionToken: 'token-of-ASIAACCOUNTA' });
    }
    expect(factory.target(access()).ec2('eu-west-1')).toBe(euEc2);
    expect(usEc2).not.toBe(euEc2);
  });

  it('assumes the role again for another account', async () => {
    stsMock
      .on(AssumeRoleCommand, { RoleArn: `arn:aws:iam::${ACCOUNT_A}:role/${ROLE}` })
      .resolves(assumedCredentials('ASIAACCOUNTA'))
      .on(AssumeRoleCommand, { RoleArn: `arn:aws:iam::${ACCOUNT_B}:role/${ROLE}` })
      .resolves(assumedCredentials('ASIAACCOUNTB'));
    const factory = createClientFactory('eu-west-1');

    const a = await factory.target(access()).ec2('eu-west-1').config.credentials();
    const b = await factory.target(access({ accountId: ACCOUNT_B })).ec2('eu-west-1').config.credentials();

    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
    expect(a.accessKeyId).toBe('ASIAACCOUNTA');
    expect(b.accessKeyId).toBe('ASIAACCOUNTB');
  });

  it('assumes the role again when the cached credentials expire within five minutes', async () => {
    stsMock.on(AssumeRoleCommand).resolvesOnce(assumedCredentials('ASIASHORT', 60_000)).resolves(assumedCredentials('ASIALONG'));
    const factory = createClientFactory('eu-west-1');

    await factory.target(access()).ec2('eu-west-1').config.credentials();
    const second = await factory.target(access()).kms('eu-west-1').config.credentials();

    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
    expect(second.accessKeyId).toBe('ASIALONG');
  });

  it('passes the ExternalId when one is given', async () => {
    stsMock.on(AssumeRoleCommand).resolves(assumedCredentials('ASIAACCOUNTA'));
    const factory = createClientFactory('eu-west-1');

    await factory.target(access({ externalId: 'ami-pipeline-7f3c' })).ec2('eu-west-1').config.credentials();

    expect(stsMock).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: `arn:aws:iam::${ACCOUNT_A}:role/${ROLE}`,
      ExternalId: 'ami-pipeline-7f3c',
    });
  });

  it('sends no ExternalId when none is given', async () => {
    stsMock.on(AssumeRoleCommand).resolves(assumedCredentials('ASIAACCOUNTA'));
    const factory = createClientFactory('eu-west-1');

    await factory.target(access()).ec2('eu-west-1').config.credentials();

    expect(stsMock.commandCalls(AssumeRoleCommand)[0]?.args[0].input.ExternalId).toBeUndefined();
  });

  it('turns AccessDenied from STS into TargetRoleNotAssumableError naming the role and the template to deploy', async () => {
    const message = `User: arn:aws:sts::999999999999:assumed-role/ami-pipeline-copyEncrypt-role/ami-pipeline-copyEncrypt is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${ACCOUNT_A}:role/${ROLE}`;
    stsMock.on(AssumeRoleCommand).rejects(awsError('AccessDenied', message, 403));
    const factory = createClientFactory('eu-west-1');

    const error = await rejection(factory.target(access()).ec2('eu-west-1').config.credentials());

    expect(error.name).toBe('TargetRoleNotAssumableError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'AccessDenied', message });
    expect(error.message).toContain(`Cannot assume arn:aws:iam::${ACCOUNT_A}:role/${ROLE}`);
    expect(error.message).toContain(`Deploy templates/target-account.yml in account ${ACCOUNT_A}`);
    expect(error.message).not.toContain('ExternalId');
  });

  it('also asks to check the ExternalId when one was used', async () => {
    stsMock.on(AssumeRoleCommand).rejects(awsError('AccessDenied', 'User: x is not authorized to perform: sts:AssumeRole', 403));
    const factory = createClientFactory('eu-west-1');

    const error = await rejection(factory.target(access({ externalId: 'ami-pipeline-7f3c' })).ec2('eu-west-1').config.credentials());

    expect(error.name).toBe('TargetRoleNotAssumableError');
    expect(error.message).toContain('ExternalId matches "externalId"');
  });

  it('keeps STS throttling retryable', async () => {
    stsMock.on(AssumeRoleCommand).rejects(awsError('Throttling', 'Rate exceeded'));
    const factory = createClientFactory('eu-west-1');

    const error = await rejection(factory.target(access()).ec2('eu-west-1').config.credentials());

    expect(error.name).toBe('AwsThrottlingError');
  });

  it('assumes the role in the aws-cn partition when it runs in a China region', async () => {
    stsMock.on(AssumeRoleCommand).resolves(assumedCredentials('ASIACN'));
    const factory = createClientFactory('cn-north-1');

    await factory.target(access()).ec2('cn-northwest-1').config.credentials();

    expect(stsMock).toHaveReceivedCommandWith(AssumeRoleCommand, { RoleArn: `arn:aws-cn:iam::${ACCOUNT_A}:role/${ROLE}` });
  });

  it('never assumes a role for builder clients', async () => {
    const factory = createClientFactory('eu-west-1');

    const credentials = await factory.builder().ec2('eu-west-1').config.credentials();

    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 0);
    expect(credentials.accessKeyId).toBe('testing');
  });
});

describe('clientFactory', () => {
  it('builds only the clients it was given, and names the one it was not', () => {
    const factory = clientFactory({ ec2: EC2Client }, 'eu-west-1');

    expect(factory.builder().ec2('eu-west-1')).toBeInstanceOf(EC2Client);
    expect(() => factory.builder().kms('eu-west-1')).toThrow("This function's client factory has no kms client");
    expect(() => factory.target(access()).sns('eu-west-1')).toThrow("This function's client factory has no sns client");
    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 0);
  });

  it("reaches IAM through its partition's home region, one client per partition", async () => {
    const clients = createClientFactory('eu-west-1').builder();

    await expect(clients.iam('eu-west-1').config.region()).resolves.toBe('us-east-1');
    await expect(clients.iam('cn-northwest-1').config.region()).resolves.toBe('cn-north-1');
    expect(clients.iam('ap-southeast-2')).toBe(clients.iam('eu-west-1'));
  });
});

describe('roleArn', () => {
  it('uses the aws-cn partition for cn- regions', () => {
    expect(roleArn(ACCOUNT_A, ROLE, 'cn-north-1')).toBe(`arn:aws-cn:iam::${ACCOUNT_A}:role/${ROLE}`);
    expect(partitionOf('cn-northwest-1')).toBe('aws-cn');
  });

  it('uses the aws partition for commercial regions and aws-us-gov for GovCloud', () => {
    expect(roleArn(ACCOUNT_A, ROLE, 'eu-west-1')).toBe(`arn:aws:iam::${ACCOUNT_A}:role/${ROLE}`);
    expect(roleArn(ACCOUNT_A, ROLE, 'us-gov-west-1')).toBe(`arn:aws-us-gov:iam::${ACCOUNT_A}:role/${ROLE}`);
  });
});

describe('sessionNameFor', () => {
  it('keeps session names within 64 allowed characters', () => {
    const name = sessionNameFor(`run:${'x'.repeat(100)} with spaces`);
    expect(name.length).toBeLessThanOrEqual(64);
    expect(name).toMatch(/^[\w+=,.@-]+$/);
  });
});
