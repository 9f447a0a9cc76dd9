import { CreateGrantCommand, type GrantListEntry, KMSClient, ListGrantsCommand, type ListGrantsCommandInput } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { createGrant, type CreateGrantEvent } from '../../functions/create-grant';
import { grantName } from '../../functions/shared/grants';
import { ACCOUNT_A, ACCOUNT_B, KEY_A_EU, awsError, item, rejection, testClients } from '../support/fixtures';

const kmsMock = mockClient(KMSClient);

const GRANTEE = `arn:aws:iam::${ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
// What EBS needs for Auto Scaling to launch from an encrypted image: written out here, not imported, so a change to the product's list fails.
const OPERATIONS = ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'DescribeKey', 'CreateGrant'];
const GRANT_ID = '0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60';
const GRANT_TOKEN = 'AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFlNTIzODZhMzgyZjBlNGY3NiKIAQEBAgB4';
const ROLE_SESSION = `arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/ami-pipeline-exec-1`;

const deps = () => ({ clients: testClients() });
const event = (overrides: Partial<CreateGrantEvent['item']['target']> = {}): CreateGrantEvent => ({
  item: item(overrides),
  copy: { imageId: 'ami-0fedcba9876543210', kmsKeyArn: KEY_A_EU },
});

function grant(overrides: Partial<GrantListEntry> = {}): GrantListEntry {
  return {
    KeyId: KEY_A_EU,
    GrantId: GRANT_ID,
    Name: grantName(KEY_A_EU, GRANTEE),
    GranteePrincipal: GRANTEE,
    IssuingAccount: `arn:aws:iam::${ACCOUNT_A}:root`,
    Operations: [...OPERATIONS] as GrantListEntry['Operations'],
    ...overrides,
  };
}

/** ListGrants that lists nothing for the whole key and `confirmed` when asked for one grant by ID. */
function listGrants(confirmed: GrantListEntry[]): void {
  kmsMock.on(ListGrantsCommand).callsFake((input: ListGrantsCommandInput) => ({ Grants: input.GrantId ? confirmed : [], Truncated: false }));
}

beforeEach(() => {
  kmsMock.reset();
});

describe('createGrant', () => {
  it('grants the Auto Scaling service-linked role of the target account the eight operations EBS needs', async () => {
    listGrants([grant()]);
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: GRANT_ID, GrantToken: GRANT_TOKEN });

    const result = await createGrant(event(), deps());

    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 1);
    const input = kmsMock.commandCalls(CreateGrantCommand)[0]?.args[0].input;
    expect(input).toEqual({ KeyId: KEY_A_EU, GranteePrincipal: GRANTEE, Operations: OPERATIONS, Name: input?.Name });
    expect(input?.Name).toMatch(/^ami-pipeline-autoscaling-[0-9a-f]{16}$/);
    expect(kmsMock).toHaveReceivedCommandWith(ListGrantsCommand, { KeyId: KEY_A_EU, GrantId: GRANT_ID });
    expect(result).toEqual({ grantId: GRANT_ID, grantToken: GRANT_TOKEN, grantName: input?.Name, granteePrincipal: GRANTEE, reused: false });
  });

  it('derives the same grant name on every run and a different one per key or account', async () => {
    listGrants([grant()]);
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: GRANT_ID, GrantToken: GRANT_TOKEN });

    const first = await createGrant(event(), deps());
    const second = await createGrant(event(), deps());

    const names = kmsMock.commandCalls(CreateGrantCommand).map((c) => c.args[0].input.Name);
    expect(names).toEqual([first.grantName, first.grantName]);
    expect(second.grantName).toBe(first.grantName);
    expect(grantName(`arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/44444444-4444-4444-4444-444444444444`, GRANTEE)).not.toBe(first.grantName);
    expect(grantName(KEY_A_EU, GRANTEE.replace(ACCOUNT_A, ACCOUNT_B))).not.toBe(first.grantName);
  });

  it('uses the aws-cn partition for the grantee in a China region', async () => {
    listGrants([grant()]);
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: GRANT_ID, GrantToken: GRANT_TOKEN });

    const result = await createGrant(event({ region: 'cn-north-1' }), deps());

    expect(result.granteePrincipal).toBe(
      `arn:aws-cn:iam::${ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    );
  });

  it('reuses a grant already listed with the same name, grantee and operations without creating another', async () => {
    kmsMock.on(ListGrantsCommand).resolves({ Grants: [grant()], Truncated: false });

    const result = await createGrant(event(), deps());

    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 0);
    expect(kmsMock).toHaveReceivedCommandWith(ListGrantsCommand, { KeyId: KEY_A_EU });
    expect(result).toEqual({ grantId: GRANT_ID, grantToken: null, grantName: grantName(KEY_A_EU, GRANTEE), granteePrincipal: GRANTEE, reused: true });
  });

  it('does not reuse a grant of that name that lacks an operation', async () => {
    kmsMock
      .on(ListGrantsCommand)
      .callsFake((input: ListGrantsCommandInput) => ({
        Grants: input.GrantId ? [grant({ GrantId: 'new-grant' })] : [grant({ GrantId: 'old-grant', Operations: ['Encrypt', 'Decrypt'] })],
      }));
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: 'new-grant', GrantToken: GRANT_TOKEN });

    const result = await createGrant(event(), deps());

    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 1);
    expect(result).toMatchObject({ grantId: 'new-grant', reused: false });
  });

  it('does not reuse a grant of that name for another grantee', async () => {
    kmsMock
      .on(ListGrantsCommand)
      .callsFake((input: ListGrantsCommandInput) => ({
        Grants: input.GrantId ? [grant({ GrantId: 'new-grant' })] : [grant({ GrantId: 'other', GranteePrincipal: GRANTEE.replace(ACCOUNT_A, ACCOUNT_B) })],
      }));
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: 'new-grant', GrantToken: GRANT_TOKEN });

    const result = await createGrant(event(), deps());

    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 1);
    expect(result.reused).toBe(false);
  });

  it('follows ListGrants pages to find an existing grant', async () => {
    kmsMock
      .on(ListGrantsCommand)
      .callsFake((input: ListGrantsCommandInput) =>
        input.Marker === 'page-2'
          ? { Grants: [grant()], Truncated: false }
          : { Grants: [grant({ GrantId: 'unrelated', Name: 'someone-else', GranteePrincipal: `arn:aws:iam::${ACCOUNT_A}:role/Other` })], Truncated: true, NextMarker: 'page-2' },
      );

    const result = await createGrant(event(), deps());

    expect(kmsMock).toHaveReceivedCommandTimes(ListGrantsCommand, 2);
    expect(kmsMock).toHaveReceivedNthCommandWith(ListGrantsCommand, 2, { KeyId: KEY_A_EU, Marker: 'page-2' });
    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 0);
    expect(result).toMatchObject({ grantId: GRANT_ID, reused: true });
  });

  it('throws the retryable GrantNotYetPropagatedError when the new grant is not listed yet', async () => {
    listGrants([]);
    kmsMock.on(CreateGrantCommand).resolves({ GrantId: GRANT_ID, GrantToken: GRANT_TOKEN });

    const error = await rejection(createGrant(event(), deps()));

    expect(error.name).toBe('GrantNotYetPropagatedError');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(GRANT_ID);
  });

  it('says the grant must be created from inside the target account when KMS denies CreateGrant', async () => {
    const message = `User: ${ROLE_SESSION} is not authorized to perform: kms:CreateGrant on resource: ${KEY_A_EU} because no resource-based policy allows the kms:CreateGrant action`;
    listGrants([]);
    kmsMock.on(CreateGrantCommand).rejects(awsError('AccessDeniedException', message));

    const error = await rejection(createGrant(event(), deps()));

    expect(error.name).toBe('GrantFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'AccessDeniedException', message });
    expect(error.message).toContain('kms:CreateGrant');
    expect(error.message).toContain(`must be created from inside account ${ACCOUNT_A}`);
    expect(error.message).toContain(GRANTEE);
  });

  it.each([
    ['NotFoundException', `Key '${KEY_A_EU}' does not exist`],
    ['DisabledException', `${KEY_A_EU} is disabled.`],
  ])('refuses the key with KmsKeyUnusableError on %s', async (code, message) => {
    listGrants([]);
    kmsMock.on(CreateGrantCommand).rejects(awsError(code, message));

    const error = await rejection(createGrant(event(), deps()));

    expect(error.name).toBe('KmsKeyUnusableError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code, message });
  });

  it('turns KMS throttling into the retryable AwsThrottlingError', async () => {
    kmsMock.on(ListGrantsCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));

    const error = await rejection(createGrant(event(), deps()));

    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
    expect(kmsMock).toHaveReceivedCommandTimes(CreateGrantCommand, 0);
  });
});
