import { DescribeImagesCommand, EC2Client, type Image } from '@aws-sdk/client-ec2';
import { DescribeKeyCommand, type GrantListEntry, KMSClient, ListGrantsCommand, type ListGrantsCommandInput, RevokeGrantCommand } from '@aws-sdk/client-kms';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { rekey, type RekeyEvent } from '../../functions/rekey';
import { grantName } from '../../functions/shared/grants';
import { TAGS, MANAGED_BY } from '../../functions/shared/tags';
import { ACCOUNT_A, KEY_A_EU, awsError, item, rejection, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const kmsMock = mockClient(KMSClient);
const ssmMock = mockClient(SSMClient);

const PARAMETER = '/golden/base';
const PUBLISHED = 'ami-0aaaaaaaaaaaaaaa1';
const SNAPSHOT = 'snap-0aaaaaaaaaaaaaaa1';
const OLD_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/22222222-2222-2222-2222-222222222222`;
const OLDER_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/33333333-3333-3333-3333-333333333333`;
const GRANTEE = `arn:aws:iam::${ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;

const deps = () => ({ clients: testClients() });
const settings = { mode: 'rekey' as const, publish: { parameterName: PARAMETER, launchTemplates: [], protect: true as const } };
const { source: _source, ...rekeyItem } = item({}, settings);
const current: RekeyEvent = { action: 'current', item: { ...rekeyItem, source: null } };
const revoke = (lineage: string | null = PARAMETER): RekeyEvent => ({
  action: 'revoke',
  item: item({}, settings),
  copy: { imageId: 'ami-0bbbbbbbbbbbbbbb2', kmsKeyArn: KEY_A_EU },
  publish: { lineage },
});

function published(keyArn: string, overrides: Partial<Image> = {}): Image {
  return {
    ImageId: PUBLISHED,
    Name: 'base encrypted ami-0123456789abcdef0',
    State: 'available',
    Architecture: 'arm64',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: SNAPSHOT, VolumeSize: 8, Encrypted: true, KmsKeyId: keyArn } }],
    Tags: [
      { Key: TAGS.kmsKey, Value: keyArn },
      { Key: TAGS.managedBy, Value: MANAGED_BY },
    ],
    ...overrides,
  };
}

function pipelineGrant(keyArn: string, grantId: string): GrantListEntry {
  return { KeyId: keyArn, GrantId: grantId, Name: grantName(keyArn, GRANTEE), GranteePrincipal: GRANTEE, Operations: ['Decrypt'] };
}

beforeEach(() => {
  ec2Mock.reset();
  kmsMock.reset();
  ssmMock.reset();
  kmsMock.on(DescribeKeyCommand).resolves({
    KeyMetadata: { KeyId: KEY_A_EU.split('/')[1], Arn: KEY_A_EU, AWSAccountId: ACCOUNT_A, KeyState: 'Enabled', KeyManager: 'CUSTOMER', KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' },
  });
});

describe('rekey: ResolveCurrentCopy', () => {
  it('makes the copy the parameter points at the source of the re-encrypting copy', async () => {
    ssmMock.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Name: PARAMETER, Value: PUBLISHED, Version: 3 } });
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [PUBLISHED] }).resolves({ Images: [published(OLD_KEY)] });

    const result = await rekey(current, deps());

    expect(result).toEqual({
      source: {
        imageId: PUBLISHED,
        region: 'eu-west-1',
        accountId: ACCOUNT_A,
        name: 'base encrypted ami-0123456789abcdef0',
        architecture: 'arm64',
        rootDeviceName: '/dev/xvda',
        snapshotIds: [SNAPSHOT],
        sizeGiB: 8,
        tags: {},
        preexistingShares: { launchPermission: [], createVolumePermission: {} },
      },
      kmsKeyArn: OLD_KEY,
      newKeyArn: KEY_A_EU,
      alreadyOnKey: false,
    });
    expect(kmsMock).toHaveReceivedCommandWith(DescribeKeyCommand, { KeyId: 'alias/ami-encryption' });
  });

  it('says a copy already on the new key is so (a resumed rekey)', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Value: PUBLISHED } });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [published(KEY_A_EU)] });

    expect(await rekey(current, deps())).toMatchObject({ kmsKeyArn: KEY_A_EU, alreadyOnKey: true });
  });

  it('refuses a target whose parameter does not exist, naming the parameter and the fix', async () => {
    ssmMock.on(GetParameterCommand).rejects(awsError('ParameterNotFound', ''));

    const error = await rejection(rekey(current, deps()));

    expect(error.name).toBe('SourceImageNotFoundError');
    expect(error.message).toContain(`parameter ${PARAMETER} does not exist`);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 0);
  });

  it('refuses a parameter that points at a deregistered image', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Value: PUBLISHED } });
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${PUBLISHED}]' does not exist`));

    const error = await rejection(rekey(current, deps()));

    expect(error.name).toBe('SourceImageNotFoundError');
    expect(error.message).toContain(`points at ${PUBLISHED}, which is gone`);
  });

  it('turns a refused parameter read into AccessDeniedError with the permission to add', async () => {
    ssmMock.on(GetParameterCommand).rejects(awsError('AccessDeniedException', `User: arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/x is not authorized to perform: ssm:GetParameter`));

    const error = await rejection(rekey(current, deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('The target role needs ssm:GetParameter.');
  });
});

describe('rekey: RevokeOldGrants', () => {
  it('revokes nothing and lists nothing without a lineage', async () => {
    expect(await rekey(revoke(null), deps())).toEqual({ revoked: [] });
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 0);
  });

  it('revokes the pipeline grants on every page of a truncated grant list, and only those', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [published(OLD_KEY), published(KEY_A_EU, { ImageId: 'ami-0bbbbbbbbbbbbbbb2' })] });
    kmsMock.on(ListGrantsCommand).callsFake((input: ListGrantsCommandInput) =>
      input.Marker === undefined
        ? {
            Grants: [
              pipelineGrant(OLD_KEY, 'grant-page-1'),
              { KeyId: OLD_KEY, GrantId: 'grant-someone-else', Name: 'team-grant', GranteePrincipal: `arn:aws:iam::${ACCOUNT_A}:role/Team`, Operations: ['Decrypt'] },
            ],
            Truncated: true,
            NextMarker: 'page-2',
          }
        : { Grants: [pipelineGrant(OLD_KEY, 'grant-page-2')], Truncated: false },
    );

    const result = await rekey(revoke(), deps());

    expect(result).toEqual({ revoked: [{ keyArn: OLD_KEY, grantId: 'grant-page-1' }, { keyArn: OLD_KEY, grantId: 'grant-page-2' }] });
    expect(kmsMock).toHaveReceivedCommandWith(ListGrantsCommand, { KeyId: OLD_KEY, Marker: 'page-2' });
    expect(kmsMock).not.toHaveReceivedCommandWith(ListGrantsCommand, { KeyId: KEY_A_EU });
    expect(kmsMock).toHaveReceivedCommandTimes(RevokeGrantCommand, 2);
    expect(kmsMock).toHaveReceivedCommandWith(RevokeGrantCommand, { KeyId: OLD_KEY, GrantId: 'grant-page-2' });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ['self'],
      Filters: [
        { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] },
        { Name: `tag:${TAGS.lineage}`, Values: [PARAMETER] },
      ],
    });
  });

  it('passes over a key deleted since, and goes on with the others', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [published(OLDER_KEY, { ImageId: 'ami-0ccccccccccccccc3' }), published(OLD_KEY)] });
    kmsMock
      .on(ListGrantsCommand, { KeyId: OLDER_KEY })
      .rejects(awsError('KMSInvalidStateException', `${OLDER_KEY} is pending deletion.`))
      .on(ListGrantsCommand, { KeyId: OLD_KEY })
      .resolves({ Grants: [pipelineGrant(OLD_KEY, 'grant-1')], Truncated: false });

    expect(await rekey(revoke(), deps())).toEqual({ revoked: [{ keyArn: OLD_KEY, grantId: 'grant-1' }] });
  });

  it('stops with AccessDeniedError when the target role may not revoke', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [published(OLD_KEY)] });
    kmsMock.on(ListGrantsCommand).resolves({ Grants: [pipelineGrant(OLD_KEY, 'grant-1')], Truncated: false });
    kmsMock.on(RevokeGrantCommand).rejects(awsError('AccessDeniedException', `User is not authorized to perform: kms:RevokeGrant on resource: ${OLD_KEY}`));

    const error = await rejection(rekey(revoke(), deps()));

    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('kms:RevokeGrant');
  });
});
