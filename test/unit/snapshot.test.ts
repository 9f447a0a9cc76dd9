import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../../functions/shared/errors';
import { SOURCE_KEY_ACTIONS, sourceKeyPolicyStatements } from '../../functions/shared/key-policy';
import type { RunPlan } from '../../functions/shared/plan';
import { resolveSource, type SnapshotDeps } from '../../functions/shared/resolve-source';
import { ACCOUNT_A, ACCOUNT_B, BUILDER, DEFAULT_SETTINGS, SOURCE_IMAGE, SOURCE_SNAPSHOT, awsError, rejection, testClients } from '../support/fixtures';
import { runFiles } from '../../functions/shared/run-store';
import { memoryRunStore } from '../support/run-store';

const ec2Mock = mockClient(EC2Client);
const kmsMock = mockClient(KMSClient);
const ssmMock = mockClient(SSMClient);

const DATA_SNAPSHOT = 'snap-0fedcba9876543210';
const OTHER_ACCOUNT = '333333333333';
const SOURCE_KEY = `arn:aws:kms:eu-west-1:${BUILDER}:key/99999999-9999-9999-9999-999999999999`;
const KEY_B_EU = `arn:aws:kms:eu-west-1:${ACCOUNT_B}:key/22222222-2222-2222-2222-222222222222`;
const KEY_B_US = `arn:aws:kms:us-east-1:${ACCOUNT_B}:key/33333333-3333-3333-3333-333333333333`;
const SUBNET_A = 'subnet-0aaaaaaaaaaaaaaaa';
const SUBNET_VERIFY = 'subnet-0bbbbbbbbbbbbbbbb';

function deps(overrides: Partial<SnapshotDeps> = {}): SnapshotDeps {
  return { clients: testClients(), pipelineRegion: 'eu-west-1', builderAccountId: async () => BUILDER, runsBucket: () => 'runs-bucket', store: memoryRunStore(), ...overrides };
}

/** Three targets: A with an alias, B with a key per region, and the builder account itself (never shared with). */
function input(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    source: { imageId: SOURCE_IMAGE, region: 'eu-west-1' },
    targets: [
      { accountId: ACCOUNT_A, regions: ['eu-west-1', 'eu-central-1'], kmsKey: 'alias/ami-encryption', subnetIds: { 'eu-central-1': SUBNET_A } },
      { accountId: ACCOUNT_B, regions: ['eu-west-1', 'us-east-1'], kmsKey: { 'eu-west-1': KEY_B_EU, 'us-east-1': KEY_B_US } },
      { accountId: BUILDER, regions: ['us-east-1'], kmsKey: 'alias/builder-ami' },
    ],
    verify: { subnetIds: { 'eu-west-1': SUBNET_VERIFY } },
    ...overrides,
  };
}

function image(overrides: Partial<Image> = {}): Image {
  return {
    ImageId: SOURCE_IMAGE,
    Name: 'base-image-2026-11-29',
    OwnerId: BUILDER,
    State: 'available',
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    Architecture: 'arm64',
    CreationDate: '2026-11-29T10:00:00.000Z',
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: SOURCE_SNAPSHOT, VolumeSize: 8, Encrypted: true } },
      { DeviceName: '/dev/sdb', Ebs: { SnapshotId: DATA_SNAPSHOT, VolumeSize: 20, Encrypted: true } },
      { DeviceName: '/dev/sdc', VirtualName: 'ephemeral0' },
    ],
    ...overrides,
  };
}

function keyPolicy(...statements: object[]): string {
  return JSON.stringify({ Version: '2012-10-17', Id: 'key-default-1', Statement: statements });
}
const ownerStatement = {
  Sid: 'Enable IAM User Permissions',
  Effect: 'Allow',
  Principal: { AWS: `arn:aws:iam::${BUILDER}:root` },
  Action: 'kms:*',
  Resource: '*',
};
function allowAccounts(accounts: string[], action: string | string[] = [...SOURCE_KEY_ACTIONS]): object {
  return {
    Sid: 'Allow target accounts to copy the AMI',
    Effect: 'Allow',
    Principal: { AWS: accounts.map((a) => `arn:aws:iam::${a}:root`) },
    Action: action,
    Resource: '*',
  };
}

/** A source image with two snapshots encrypted with a customer managed key that both target accounts may use. */
function mockSource(): void {
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image()] });
  ec2Mock.on(DescribeSnapshotsCommand).resolves({
    Snapshots: [
      { SnapshotId: SOURCE_SNAPSHOT, Encrypted: true, KmsKeyId: SOURCE_KEY, State: 'completed' },
      { SnapshotId: DATA_SNAPSHOT, Encrypted: true, KmsKeyId: SOURCE_KEY, State: 'completed' },
    ],
  });
  kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: SOURCE_KEY, Arn: SOURCE_KEY, KeyManager: 'CUSTOMER', KeyState: 'Enabled' } });
  kmsMock.on(GetKeyPolicyCommand).resolves({ PolicyName: 'default', Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A, ACCOUNT_B])) });
  ec2Mock.on(DescribeImageAttributeCommand).resolves({
    ImageId: SOURCE_IMAGE,
    LaunchPermissions: [{ UserId: ACCOUNT_B }, { UserId: OTHER_ACCOUNT }],
  });
  ec2Mock.on(DescribeSnapshotAttributeCommand, { SnapshotId: SOURCE_SNAPSHOT }).resolves({
    SnapshotId: SOURCE_SNAPSHOT,
    CreateVolumePermissions: [{ UserId: ACCOUNT_A }, { UserId: OTHER_ACCOUNT }],
  });
  ec2Mock.on(DescribeSnapshotAttributeCommand, { SnapshotId: DATA_SNAPSHOT }).resolves({ SnapshotId: DATA_SNAPSHOT, CreateVolumePermissions: [] });
}

async function regionOf(client: unknown): Promise<string> {
  return (client as EC2Client).config.region();
}

beforeEach(() => {
  ec2Mock.reset();
  kmsMock.reset();
  ssmMock.reset();
});

describe('resolveSource', () => {
  it('resolves a source by image ID into one target per account and region', async () => {
    mockSource();
    const store = memoryRunStore();
    const plan = await resolveSource({ input: input(), executionName: 'exec-1' }, deps({ store }));

    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeImagesCommand, { ImageIds: [SOURCE_IMAGE] });
    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeSnapshotsCommand, { SnapshotIds: [SOURCE_SNAPSHOT, DATA_SNAPSHOT] });
    expect(kmsMock).toHaveReceivedCommandExactlyOnceWith(DescribeKeyCommand, { KeyId: SOURCE_KEY });
    expect(kmsMock).toHaveReceivedCommandExactlyOnceWith(GetKeyPolicyCommand, { KeyId: SOURCE_KEY, PolicyName: 'default' });
    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeImageAttributeCommand, { ImageId: SOURCE_IMAGE, Attribute: 'launchPermission' });
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeSnapshotAttributeCommand, 2);
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotAttributeCommand, { SnapshotId: SOURCE_SNAPSHOT, Attribute: 'createVolumePermission' });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotAttributeCommand, { SnapshotId: DATA_SNAPSHOT, Attribute: 'createVolumePermission' });
    expect(ec2Mock.calls()).toHaveLength(5);

    const expected: RunPlan = {
      executionName: 'exec-1',
      skipped: false,
      skipReason: null,
      source: {
        imageId: SOURCE_IMAGE,
        region: 'eu-west-1',
        accountId: BUILDER,
        name: 'base-image-2026-11-29',
        architecture: 'arm64',
        rootDeviceName: '/dev/xvda',
        snapshotIds: [SOURCE_SNAPSHOT, DATA_SNAPSHOT],
        sizeGiB: 28,
        tags: {},
        preexistingShares: {
          launchPermission: [ACCOUNT_B],
          createVolumePermission: { [SOURCE_SNAPSHOT]: [ACCOUNT_A], [DATA_SNAPSHOT]: [] },
        },
      },
      shareAccountIds: [ACCOUNT_A, ACCOUNT_B],
      // Five targets, all at once: the Distributed Map's items, in the run's targets file.
      targetCount: 5,
      maxConcurrency: 0,
      files: runFiles('runs-bucket', 'exec-1'),
      settings: DEFAULT_SETTINGS,
      organization: [],
      notify: { topicArn: null },
    };
    expect(plan).toEqual(expected);
    expect(store.files.get('runs-bucket/runs/exec-1/targets.json')).toEqual([
      { accountId: ACCOUNT_A, region: 'eu-west-1', kmsKey: 'alias/ami-encryption', subnetId: SUBNET_VERIFY },
      { accountId: ACCOUNT_A, region: 'eu-central-1', kmsKey: 'alias/ami-encryption', subnetId: SUBNET_A },
      { accountId: ACCOUNT_B, region: 'eu-west-1', kmsKey: KEY_B_EU, subnetId: SUBNET_VERIFY },
      { accountId: ACCOUNT_B, region: 'us-east-1', kmsKey: KEY_B_US, subnetId: null },
      { accountId: BUILDER, region: 'us-east-1', kmsKey: 'alias/builder-ami', subnetId: null },
    ].map((target) => ({ ...target, organizationalUnitId: null })));
  });

  describe('copy.copySourceTags', () => {
    const tagged = (Tags: { Key: string; Value: string }[]) => ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ...image(), Tags }] });
    const SOURCE_TAGS = [
      { Key: 'team', Value: 'platform' },
      { Key: 'cost-center', Value: 'cc-7' },
      { Key: 'Name', Value: 'base' },
      { Key: 'aws:cloudformation:stack-name', Value: 'builder' },
      { Key: 'ami-pipeline:opt-in', Value: 'yes' },
    ];

    it('carries the listed tags of the source, read in the builder account', async () => {
      mockSource();
      tagged(SOURCE_TAGS);
      const plan = await resolveSource({ input: input({ copy: { copySourceTags: ['team', 'missing'] } }), executionName: 'exec-1' }, deps());
      expect(plan.source?.tags).toEqual({ team: 'platform' });
    });

    it('carries every user tag with true, never aws: tags, the pipeline\'s own or Name', async () => {
      mockSource();
      tagged(SOURCE_TAGS);
      const plan = await resolveSource({ input: input({ copy: { copySourceTags: true } }), executionName: 'exec-1' }, deps());
      expect(plan.source?.tags).toEqual({ team: 'platform', 'cost-center': 'cc-7' });
    });

    it('refuses a source with more user tags than a copy has room for, before anything is shared', async () => {
      mockSource();
      tagged(Array.from({ length: 39 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })));
      const error = await resolveSource({ input: input({ copy: { copySourceTags: true } }), executionName: 'exec-1' }, deps()).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'InvalidInputError' });
      expect((error as Error).message).toContain('copy.copySourceTags: source image');
      expect(ec2Mock.calls().map((c) => c.args[0].constructor.name)).not.toContain('ModifyImageAttributeCommand');
    });
  });

  it('checks unencrypted snapshots without asking KMS', async () => {
    mockSource();
    ec2Mock.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: SOURCE_SNAPSHOT, Encrypted: false },
        { SnapshotId: DATA_SNAPSHOT, Encrypted: false },
      ],
    });
    const plan = await resolveSource({ input: input(), executionName: 'exec-1' }, deps());
    expect(plan.source?.snapshotIds).toEqual([SOURCE_SNAPSHOT, DATA_SNAPSHOT]);
    expect(kmsMock.calls()).toHaveLength(0);
  });

  it('takes the newest available image of the builder account that matches the filter', async () => {
    const at = (id: string, date: string) => image({ ImageId: id, Name: `base-image-${date}`, CreationDate: `${date}T08:00:00.000Z` });
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [at('ami-0000000000000000a', '2026-11-20'), at('ami-0000000000000000b', '2026-11-28'), at('ami-0000000000000000c', '2026-11-01')], NextToken: 'page-2' })
      .resolvesOnce({ Images: [at('ami-0000000000000000d', '2026-11-27')] });
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2Mock.on(DescribeImageAttributeCommand).resolves({ LaunchPermissions: [] });
    ec2Mock.on(DescribeSnapshotAttributeCommand).resolves({ CreateVolumePermissions: [] });

    const plan = await resolveSource(
      {
        input: input({ source: { filter: { name: 'base-image-*', tags: { team: 'platform', stage: 'release' } }, region: 'eu-central-1' } }),
        executionName: 'exec-1',
      },
      deps(),
    );

    const filters = [
      { Name: 'state', Values: ['available'] },
      { Name: 'name', Values: ['base-image-*'] },
      { Name: 'tag:team', Values: ['platform'] },
      { Name: 'tag:stage', Values: ['release'] },
    ];
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
    expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 1, { Owners: ['self'], Filters: filters });
    expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 2, { Owners: ['self'], Filters: filters, NextToken: 'page-2' });
    expect(ec2Mock.commandCalls(DescribeImagesCommand)[0]?.args[0].input.ImageIds).toBeUndefined();
    // AMIs are regional: the lookup must run in the source region, not the pipeline's.
    expect(await regionOf(ec2Mock.call(0).thisValue)).toBe('eu-central-1');
    expect(plan.source).toMatchObject({ imageId: 'ami-0000000000000000b', name: 'base-image-2026-11-28', region: 'eu-central-1' });
  });

  it('refuses a filter no available image matches', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    const error = await rejection(
      resolveSource({ input: input({ source: { filter: { name: 'golden-*' }, region: 'eu-west-1' } }), executionName: 'exec-1' }, deps()),
    );
    expect(error.name).toBe('SourceImageNotFoundError');
    expect(error.message).toContain('golden-*');
  });

  it('refuses an image ID that does not exist', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${SOURCE_IMAGE}]' does not exist`));
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceImageNotFoundError');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(SOURCE_IMAGE);
    expect(error.message).toContain('source.region');
    expect(ec2Mock.calls()).toHaveLength(1);
  });

  it('refuses an image ID that DescribeImages no longer lists', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceImageNotFoundError');
  });

  it('refuses an image that is still pending, saying to wait', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ State: 'pending' })] });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceImageNotAvailableError');
    expect(error.message).toContain('pending');
    expect(error.message).toContain('wait until it is available');
    expect(ec2Mock.calls()).toHaveLength(1);
  });

  it('refuses a failed image, quoting the reason', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [image({ State: 'failed', StateReason: { Code: 'Client.InternalError', Message: 'Snapshot creation failed' } })],
    });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceImageNotAvailableError');
    expect(error.message).toContain('Snapshot creation failed');
    expect(error.message).toContain('build a new image');
  });

  it('refuses an instance-store backed image', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ RootDeviceType: 'instance-store', BlockDeviceMappings: [] })] });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceNotEbsBackedError');
    expect(error.message).toContain('instance-store');
  });

  it('refuses an image owned by another account', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ OwnerId: OTHER_ACCOUNT })] });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceNotShareableError');
    expect(error.message).toContain(OTHER_ACCOUNT);
    expect(error.message).toContain('Copy it into the builder account');
    expect(ec2Mock).not.toHaveReceivedCommand(DescribeSnapshotsCommand);
  });

  it('refuses a source encrypted with the AWS managed key', async () => {
    mockSource();
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: SOURCE_KEY, KeyManager: 'AWS', KeyState: 'Enabled' } });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceNotShareableError');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("Snapshots encrypted with the AWS Managed CMK can't be shared");
    expect(error.message).toContain('customer managed key');
    expect(error.message).toContain('Rebuild the image');
    expect(kmsMock).not.toHaveReceivedCommand(GetKeyPolicyCommand);
    expect(ec2Mock).not.toHaveReceivedCommand(DescribeImageAttributeCommand);
  });

  it('refuses a source key whose policy does not let a target account use it, naming that account', async () => {
    mockSource();
    kmsMock.on(GetKeyPolicyCommand).resolves({ Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A])) });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceKeyNotSharedError');
    expect(error.message).toContain(`account(s) ${ACCOUNT_B} use it`);
    expect(error.message).not.toContain(ACCOUNT_A);
    expect(error.message).toContain(SOURCE_KEY);
    expect(error.message).toContain('kms:ReEncryptFrom');
    expect(ec2Mock).not.toHaveReceivedCommand(DescribeImageAttributeCommand);
  });

  it('refuses a source key whose policy lacks one of the actions a copy needs', async () => {
    mockSource();
    kmsMock
      .on(GetKeyPolicyCommand)
      .resolves({ Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A, ACCOUNT_B], ['kms:Decrypt', 'kms:DescribeKey', 'kms:CreateGrant'])) });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceKeyNotSharedError');
    expect(error.message).toContain(`${ACCOUNT_A}, ${ACCOUNT_B}`);
  });

  it('refuses a key policy with only Decrypt, DescribeKey, CreateGrant and ReEncryptFrom: EBS also needs GenerateDataKeyWithoutPlaintext', async () => {
    mockSource();
    const old = ['kms:Decrypt', 'kms:DescribeKey', 'kms:CreateGrant', 'kms:ReEncryptFrom'];
    kmsMock.on(GetKeyPolicyCommand).resolves({ Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A, ACCOUNT_B], old)) });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('SourceKeyNotSharedError');
    expect(error.message).toContain('kms:GenerateDataKeyWithoutPlaintext');
  });

  it('prints the exact key policy statements to paste for the accounts that lack them, and they satisfy the check', async () => {
    mockSource();
    kmsMock.on(GetKeyPolicyCommand).resolves({ Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A])) });
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    const printed = /key policy of [^:]+:[^:]+:[^:]+:[^:]+:[^:]+:[^ ]+: (\[.*\]) \(the targets/.exec(error.message)?.[1];
    const statements = JSON.parse(printed ?? 'null') as Record<string, unknown>[];
    expect(statements).toEqual(sourceKeyPolicyStatements([ACCOUNT_B]));
    expect(JSON.stringify(statements)).toContain('kms:GenerateDataKey*');
    expect(JSON.stringify(statements)).toContain('kms:ReEncrypt*');
    expect(JSON.stringify(statements)).toContain('kms:GrantIsForAWSResource');
    // Pasted, they pass: the run goes on.
    kmsMock.on(GetKeyPolicyCommand).resolves({ Policy: keyPolicy(ownerStatement, allowAccounts([ACCOUNT_A]), ...statements) });
    ec2Mock.on(DescribeImageAttributeCommand).resolves({ LaunchPermissions: [] });
    ec2Mock.on(DescribeSnapshotAttributeCommand).resolves({ CreateVolumePermissions: [] });
    const plan = await resolveSource({ input: input(), executionName: 'exec-1' }, deps());
    expect(plan.source?.snapshotIds.length).toBeGreaterThan(0);
  });

  it.each([
    ['kms:* to the target roots', allowAccounts([ACCOUNT_A, ACCOUNT_B], 'kms:*')],
    ['the listed actions to the target roots', allowAccounts([ACCOUNT_A, ACCOUNT_B])],
    ['wildcard actions to the bare account IDs', { Effect: 'Allow', Principal: { AWS: [ACCOUNT_A, ACCOUNT_B] }, Action: ['kms:Decrypt', 'kms:Describe*', 'kms:CreateGrant', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'], Resource: '*' }],
  ])('accepts a source key whose policy allows %s', async (_what, statement) => {
    mockSource();
    kmsMock.on(GetKeyPolicyCommand).resolves({ Policy: keyPolicy(ownerStatement, statement) });
    const plan = await resolveSource({ input: input(), executionName: 'exec-1' }, deps());
    expect(plan.source?.snapshotIds).toEqual([SOURCE_SNAPSHOT, DATA_SNAPSHOT]);
    expect(plan.shareAccountIds).toEqual([ACCOUNT_A, ACCOUNT_B]);
  });

  it('does not read the source key policy when every target is the builder account', async () => {
    mockSource();
    const plan = await resolveSource(
      { input: input({ targets: [{ accountId: BUILDER, regions: ['us-east-1'], kmsKey: 'alias/builder-ami' }] }), executionName: 'exec-1' },
      deps(),
    );
    expect(plan.shareAccountIds).toEqual([]);
    expect(plan.source?.preexistingShares).toEqual({ launchPermission: [], createVolumePermission: { [SOURCE_SNAPSHOT]: [], [DATA_SNAPSHOT]: [] } });
    expect(kmsMock).toHaveReceivedCommand(DescribeKeyCommand);
    expect(kmsMock).not.toHaveReceivedCommand(GetKeyPolicyCommand);
  });

  it('skips an image that does not carry the opt-in tag, sharing nothing', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ Tags: [{ Key: 'ami-pipeline:distribute', Value: 'false' }] })] });
    const plan = await resolveSource(
      { input: input({ source: { imageId: SOURCE_IMAGE, region: 'eu-west-1', optInTag: { key: 'ami-pipeline:distribute', value: 'true' } } }), executionName: 'exec-1' },
      deps(),
    );
    expect(plan.skipped).toBe(true);
    expect(plan.skipReason).toContain('ami-pipeline:distribute=true');
    expect(plan.source).toBeNull();
    expect(plan.shareAccountIds).toEqual([]);
    expect(ec2Mock.calls()).toHaveLength(1);
    expect(kmsMock.calls()).toHaveLength(0);
  });

  it('distributes an image that carries the opt-in tag', async () => {
    mockSource();
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image({ Tags: [{ Key: 'ami-pipeline:distribute', Value: 'true' }] })] });
    const plan = await resolveSource(
      { input: input({ source: { imageId: SOURCE_IMAGE, region: 'eu-west-1', optInTag: { key: 'ami-pipeline:distribute', value: 'true' } } }), executionName: 'exec-1' },
      deps(),
    );
    expect(plan.skipped).toBe(false);
    expect(plan.shareAccountIds).toEqual([ACCOUNT_A, ACCOUNT_B]);
  });

  it('turns throttling of DescribeImages into a retryable AwsThrottlingError', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const error = await rejection(resolveSource({ input: input(), executionName: 'exec-1' }, deps()));
    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
    expect(error.aws).toEqual({ code: 'RequestLimitExceeded', message: 'Request limit exceeded.' });
  });

  it('turns throttling of a filter lookup into a retryable AwsThrottlingError', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const error = await rejection(
      resolveSource({ input: input({ source: { filter: { name: 'base-image-*' }, region: 'eu-west-1' } }), executionName: 'exec-1' }, deps()),
    );
    expect(error.name).toBe('AwsThrottlingError');
  });
});

describe('resolveSource with targetsParameter', () => {
  const PARAMETER = '/ami-pipeline/targets';
  const automatic = { source: { imageId: SOURCE_IMAGE, region: 'eu-west-1' }, targetsParameter: PARAMETER, maxConcurrency: 4 };

  it('reads the targets document from SSM in the pipeline region, inline settings winning', async () => {
    mockSource();
    ssmMock.on(GetParameterCommand).resolves({
      Parameter: {
        Name: PARAMETER,
        Type: 'String',
        Value: JSON.stringify({
          targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }],
          maxConcurrency: 20,
          copy: { timeoutMinutes: 240 },
        }),
      },
    });
    const store = memoryRunStore();
    const plan = await resolveSource({ input: automatic, executionName: 'nightly' }, deps({ pipelineRegion: 'us-east-1', store }));

    expect(ssmMock).toHaveReceivedCommandExactlyOnceWith(GetParameterCommand, { Name: PARAMETER });
    expect(await regionOf(ssmMock.call(0).thisValue)).toBe('us-east-1');
    expect(store.files.get('runs-bucket/runs/nightly/targets.json')).toEqual([{ accountId: ACCOUNT_A, organizationalUnitId: null, region: 'eu-west-1', kmsKey: 'alias/ami-encryption', subnetId: null }]);
    expect(plan.shareAccountIds).toEqual([ACCOUNT_A]);
    expect(plan.maxConcurrency).toBe(4);
    expect(plan.settings.copy.timeoutMinutes).toBe(240);
  });

  it('prefers inline targets and does not read the parameter', async () => {
    mockSource();
    await resolveSource({ input: { ...input(), targetsParameter: PARAMETER }, executionName: 'exec-1' }, deps());
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it.each([
    ['is not JSON', '{"targets": [', 'is not JSON'],
    ['holds a JSON list', '[]', 'must hold a JSON object'],
    ['has no targets', '{"maxConcurrency": 5}', 'has no "targets"'],
  ])('refuses a targets document that %s, naming targetsParameter', async (_what, value, fix) => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Type: 'String', Value: value } });
    const error = (await rejection(resolveSource({ input: automatic, executionName: 'nightly' }, deps()))) as InvalidInputError;
    expect(error.name).toBe('InvalidInputError');
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatch(/^targetsParameter: /);
    expect(error.issues[0]).toContain(PARAMETER);
    expect(error.issues[0]).toContain(fix);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('validates the targets in the document like inline ones', async () => {
    ssmMock.on(GetParameterCommand).resolves({
      Parameter: { Name: PARAMETER, Value: JSON.stringify({ targets: [{ accountId: '11111111111', regions: ['eu-west-1'], kmsKey: 'alias/aws/ebs' }] }) },
    });
    const error = (await rejection(resolveSource({ input: automatic, executionName: 'nightly' }, deps()))) as InvalidInputError;
    expect(error.name).toBe('InvalidInputError');
    expect(error.issues).toEqual([
      expect.stringMatching(/^targets\[0\]\.accountId: .*12 digits/),
      expect.stringMatching(/^targets\[0\]\.kmsKey: .*customer managed key/),
    ]);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('refuses a targetsParameter that does not exist', async () => {
    ssmMock.on(GetParameterCommand).rejects(awsError('ParameterNotFound', ''));
    const error = (await rejection(resolveSource({ input: automatic, executionName: 'nightly' }, deps()))) as InvalidInputError;
    expect(error.name).toBe('InvalidInputError');
    expect(error.issues).toEqual([`targetsParameter: parameter ${PARAMETER} does not exist in eu-west-1; create it with {"targets": [...]}`]);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('retries a throttled read of the targets document', async () => {
    ssmMock.on(GetParameterCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    const error = await rejection(resolveSource({ input: automatic, executionName: 'nightly' }, deps()));
    expect(error.name).toBe('AwsThrottlingError');
  });
});
