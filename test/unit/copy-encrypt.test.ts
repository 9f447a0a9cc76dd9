import {
  DescribeSnapshotsCommand,
  EnableImageDeprecationCommand,
  CopyImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { DescribeKeyCommand, KMSClient, type KeyMetadata } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  copyClientToken,
  copyName,
  copyStatus,
  findCopy,
  startCopy,
  type CopyState,
} from '../../functions/copy-encrypt';
import { resolveTargetKey } from '../../functions/shared/target-key';
import { TargetRoleNotAssumableError } from '../../functions/shared/errors';
import { ACCOUNT_A, ACCOUNT_B, KEY_A_EU, SOURCE_IMAGE, awsError, fixedNow, item, rejection, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const kmsMock = mockClient(KMSClient);

const KEY_A_US = `arn:aws:kms:us-east-1:${ACCOUNT_A}:key/22222222-2222-2222-2222-222222222222`;
const COPY_ID = 'ami-0fedcba9876543210';
/** A copy still pending, its one snapshot known (the approach's looks read its progress). */
const PENDING_COPY: Image = { ImageId: COPY_ID, State: 'pending', BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1' } }] };
const AMI_NAME_CHARS = /^[a-zA-Z0-9()[\] ./\-'@_]+$/;

const deps = () => ({ clients: testClients(), now: fixedNow });

function keyMetadata(overrides: Partial<KeyMetadata> = {}): KeyMetadata {
  return {
    KeyId: '11111111-1111-1111-1111-111111111111',
    Arn: KEY_A_EU,
    AWSAccountId: ACCOUNT_A,
    Enabled: true,
    KeyState: 'Enabled',
    KeyManager: 'CUSTOMER',
    KeySpec: 'SYMMETRIC_DEFAULT',
    KeyUsage: 'ENCRYPT_DECRYPT',
    ...overrides,
  };
}

function copyState(overrides: Partial<CopyState> = {}): CopyState {
  return {
    imageId: COPY_ID,
    kmsKeyArn: KEY_A_EU,
    state: 'pending',
    reused: false,
    attempt: 0,
    waitSeconds: 60,
    progress: null,
    startedAt: '2026-11-29T12:00:00.000Z',
    deadline: '2026-11-29T15:00:00.000Z',
    checkedAt: '2026-11-29T12:00:00.000Z',
    ...overrides,
  };
}

beforeEach(() => {
  ec2Mock.reset();
  kmsMock.reset();
});

describe('startCopy', () => {
  it('copies the source into the target region encrypted with the target key resolved from its alias', async () => {
    const target = item({ region: 'us-east-1' });
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ Arn: KEY_A_US }) });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });

    const result = await startCopy(target, deps());

    expect(kmsMock).toHaveReceivedCommandWith(DescribeKeyCommand, { KeyId: 'alias/ami-encryption' });
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ['self'],
      Filters: [
        { Name: 'tag:ami-pipeline:source-image', Values: [SOURCE_IMAGE] },
        { Name: 'tag:ami-pipeline:kms-key', Values: [KEY_A_US] },
      ],
    });
    const tags = [
      { Key: 'ami-pipeline:source-image', Value: SOURCE_IMAGE },
      { Key: 'ami-pipeline:source-region', Value: 'eu-west-1' },
      { Key: 'ami-pipeline:source-account', Value: '999999999999' },
      { Key: 'ami-pipeline:kms-key', Value: KEY_A_US },
      { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
      { Key: 'Name', Value: `base-image-2026-11-29 encrypted ${SOURCE_IMAGE}` },
    ];
    expect(ec2Mock).toHaveReceivedCommandTimes(CopyImageCommand, 1);
    const request = {
      SourceImageId: SOURCE_IMAGE,
      SourceRegion: 'eu-west-1',
      Name: `base-image-2026-11-29 encrypted ${SOURCE_IMAGE}`,
      Description: `${SOURCE_IMAGE} from 999999999999/eu-west-1, encrypted by encrypted-ami-pipeline`,
      Encrypted: true,
      KmsKeyId: KEY_A_US,
      TagSpecifications: [
        { ResourceType: 'image' as const, Tags: tags },
        { ResourceType: 'snapshot' as const, Tags: tags },
      ],
    };
    expect(ec2Mock).toHaveReceivedCommandWith(CopyImageCommand, { ...request, ClientToken: copyClientToken(target, KEY_A_US, request, '2026-11-29') });
    // The run that made the copy is recorded once CopyImage answered (not in the request: every run sends the same one).
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [COPY_ID], Tags: [{ Key: 'ami-pipeline:execution', Value: 'exec-1' }] });
    const copyCall = ec2Mock.commandCalls(CopyImageCommand)[0];
    const token = copyCall?.args[0].input.ClientToken ?? '';
    expect(token.length).toBeGreaterThan(0);
    expect(token.length).toBeLessThanOrEqual(64);
    expect(token).toMatch(/^[\x21-\x7e]+$/);
    // CopyImage runs in the destination region.
    expect(await (copyCall?.thisValue as EC2Client).config.region()).toBe('us-east-1');

    expect(result).toEqual({
      imageId: COPY_ID,
      kmsKeyArn: KEY_A_US,
      state: 'pending',
      reused: false,
      attempt: 0,
      // The first look, sized from the source's 8 GiB of snapshots.
      waitSeconds: 120,
      progress: null,
      startedAt: '2026-11-29T12:00:00.000Z',
      deadline: '2026-11-29T15:00:00.000Z',
      checkedAt: '2026-11-29T12:00:00.000Z',
    });
  });

  it("gives the user's tags (placeholders expanded) and the source's selected tags in CopyImage's TagSpecifications", async () => {
    const target = item({}, { copy: { ...item().settings.copy, tags: { team: 'web', origin: '{sourceImageId} of {date}', Name: 'golden {region}' } } });
    const withSourceTags = { ...target, source: { ...target.source, tags: { team: 'platform', cost: 'cc-7' } } };
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });

    await startCopy(withSourceTags, deps());

    const specs = ec2Mock.commandCalls(CopyImageCommand)[0]?.args[0].input.TagSpecifications ?? [];
    expect(specs.map((s) => s.ResourceType)).toEqual(['image', 'snapshot']);
    for (const spec of specs) {
      expect(spec.Tags).toEqual(
        expect.arrayContaining([
          // copy.tags wins over the source's tag of the same key.
          { Key: 'team', Value: 'web' },
          { Key: 'cost', Value: 'cc-7' },
          { Key: 'origin', Value: `${SOURCE_IMAGE} of 2026-11-29` },
          { Key: 'Name', Value: 'golden eu-west-1' },
          { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
        ]),
      );
      expect(spec.Tags?.filter((t) => t.Key === 'Name')).toHaveLength(1);
    }
  });

  it('reuses an available copy of the same source and key without sending CopyImage', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: 'ami-0000000000000pend', State: 'pending', CreationDate: '2026-11-29T11:00:00.000Z' },
        { ImageId: COPY_ID, State: 'available', CreationDate: '2026-11-28T11:00:00.000Z' },
      ],
    });

    const result = await startCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CopyImageCommand, 0);
    expect(result).toMatchObject({ imageId: COPY_ID, state: 'available', reused: true, waitSeconds: 0, kmsKeyArn: KEY_A_EU });
  });

  it('reuses a copy that is still pending and keeps waiting for it', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });

    const result = await startCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CopyImageCommand, 0);
    expect(result).toMatchObject({ imageId: COPY_ID, state: 'pending', reused: true, attempt: 0, waitSeconds: 120 });
  });

  it.each(['failed', 'deregistered', 'invalid'])('does not reuse a %s copy and starts a new one', async (state) => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0aaaaaaaaaaaaaaaa', State: state as Image['State'] }] });
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY_ID] }).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });
    ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });

    const result = await startCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CopyImageCommand, 1);
    expect(result).toMatchObject({ imageId: COPY_ID, state: 'pending', reused: false });
  });

  it('reuses the copy another run started with the same token, without tagging it as its own', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [] })
      .resolves({ Images: [{ ImageId: COPY_ID, State: 'pending', Tags: [{ Key: 'ami-pipeline:execution', Value: 'exec-0' }] }] });
    // EC2 answers a repeated token and request with the original copy.
    ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });

    const result = await startCopy(item(), deps());

    expect(result).toMatchObject({ imageId: COPY_ID, state: 'pending', reused: true });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 0);
  });

  it('uses the copy of a run that sent the token with other parameters (IdempotentParameterMismatch)', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolvesOnce({ Images: [] }).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });
    ec2Mock.on(CopyImageCommand).rejects(awsError('IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that has different parameters.'));

    const result = await startCopy(item(), deps());

    expect(result).toMatchObject({ imageId: COPY_ID, reused: true });
  });

  it('waits (ImageNotYetVisibleError) when the other run\'s copy is not visible yet', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).rejects(awsError('IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that has different parameters.'));

    const error = await rejection(startCopy(item(), deps()));

    expect(error.name).toBe('ImageNotYetVisibleError');
  });

  it('steps to the next token when the token\'s copy had failed, so a later run retries it', async () => {
    const FAILED = 'ami-0aaaaaaaaaaaaaaaa';
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [FAILED] }).resolves({ Images: [{ ImageId: FAILED, State: 'deregistered' }] });
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [COPY_ID] }).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });
    ec2Mock.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).resolvesOnce({ ImageId: FAILED }).resolves({ ImageId: COPY_ID });

    const result = await startCopy(item(), deps());

    const tokens = ec2Mock.commandCalls(CopyImageCommand).map((c) => c.args[0].input.ClientToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).not.toBe(tokens[1]);
    expect(result).toMatchObject({ imageId: COPY_ID, reused: false });
  });

  describe('refuses a key it must not use', () => {
    const cases: [string, () => void][] = [
      [
        'a key that does not exist',
        () =>
          kmsMock
            .on(DescribeKeyCommand)
            .rejects(awsError('NotFoundException', `Alias arn:aws:kms:eu-west-1:${ACCOUNT_A}:alias/ami-encryption is not found.`)),
      ],
      [
        'a key of another account',
        () =>
          kmsMock.on(DescribeKeyCommand).resolves({
            KeyMetadata: keyMetadata({ AWSAccountId: ACCOUNT_B, Arn: `arn:aws:kms:eu-west-1:${ACCOUNT_B}:key/33333333-3333-3333-3333-333333333333` }),
          }),
      ],
      ['a disabled key', () => kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeyState: 'Disabled', Enabled: false }) })],
      [
        'a key pending deletion',
        () => kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeyState: 'PendingDeletion', Enabled: false }) }),
      ],
      ['an AWS managed key', () => kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeyManager: 'AWS' }) })],
      [
        'an asymmetric key',
        () => kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }) }),
      ],
      ['an HMAC key', () => kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }) })],
      [
        'a key the target role may not describe',
        () =>
          kmsMock
            .on(DescribeKeyCommand)
            .rejects(
              awsError(
                'AccessDeniedException',
                `User: arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/ami-pipeline-exec-1 is not authorized to perform: kms:DescribeKey on resource: ${KEY_A_EU} because no resource-based policy allows the kms:DescribeKey action`,
              ),
            ),
      ],
    ];

    it.each(cases)('refuses %s with KmsKeyUnusableError and sends no CopyImage', async (_, arrange) => {
      arrange();
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      ec2Mock.on(CopyImageCommand).resolves({ ImageId: COPY_ID });

      const error = await rejection(startCopy(item(), deps()));

      expect(error.name).toBe('KmsKeyUnusableError');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain('alias/ami-encryption');
      expect(ec2Mock).toHaveReceivedCommandTimes(CopyImageCommand, 0);
    });

    it('names the owning account when the key belongs to another account', async () => {
      kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ AWSAccountId: ACCOUNT_B }) });
      const error = await rejection(startCopy(item(), deps()));
      expect(error.message).toContain(`it belongs to account ${ACCOUNT_B}, not ${ACCOUNT_A}`);
    });

    it('says the key pending deletion must have its deletion cancelled', async () => {
      kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata({ KeyState: 'PendingDeletion' }) });
      const error = await rejection(resolveTargetKey(item(), testClients().builder()));
      expect(error.message).toContain('its state is PendingDeletion');
      expect(error.message).toContain('cancel its deletion');
    });

    it('carries the AWS code of a missing key', async () => {
      kmsMock.on(DescribeKeyCommand).rejects(awsError('NotFoundException', `Alias arn:aws:kms:eu-west-1:${ACCOUNT_A}:alias/ami-encryption is not found.`));
      const error = await rejection(startCopy(item(), deps()));
      expect(error.aws).toEqual({ code: 'NotFoundException', message: `Alias arn:aws:kms:eu-west-1:${ACCOUNT_A}:alias/ami-encryption is not found.` });
    });
  });

  it('turns a concurrent-copy limit into the retryable CopyLimitExceededError', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).rejects(awsError('ResourceLimitExceeded', 'Too many snapshot copies in progress. The limit is 5 for this destination region.'));

    const error = await rejection(startCopy(item(), deps()));

    expect(error.name).toBe('CopyLimitExceededError');
    expect(error.retryable).toBe(true);
    expect(error.aws?.code).toBe('ResourceLimitExceeded');
  });

  it('turns EC2 request throttling into the retryable AwsThrottlingError', async () => {
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));

    const error = await rejection(startCopy(item(), deps()));

    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
  });

  it('ends the target with AwsRequestFailedError when EC2 refuses an unencrypted copy of an encrypted snapshot', async () => {
    const message =
      'Snapshot snap-0123456789abcdef0 is encrypted. Creating an unencrypted copy from an encrypted snapshot is not supported.';
    kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: keyMetadata() });
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2Mock.on(CopyImageCommand).rejects(awsError('InvalidRequest', message));

    const error = await rejection(startCopy(item(), deps()));

    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'InvalidRequest', message });
    expect(error.message).toContain(`InvalidRequest: ${message}`);
  });
});

describe('copyClientToken', () => {
  const request = { Name: 'n' };
  const token = (i = item(), key = KEY_A_EU, spent: string[] = [], day = '2026-11-29', req: object = request) => copyClientToken(i, key, req, day, spent);

  it('is the same for every run of the same source, target and key (concurrent runs get one copy)', () => {
    expect(token({ ...item(), executionName: 'exec-2' })).toBe(token());
  });

  it('differs per region when everything else is equal, because EC2 does not compare the region', () => {
    expect(token(item({ region: 'us-east-1' }))).not.toBe(token(item({ region: 'eu-west-1' })));
  });

  it('differs per account, per key and per request, so that a token is never sent with other parameters', () => {
    const base = token();
    expect(token(item({ accountId: ACCOUNT_B }))).not.toBe(base);
    expect(token(item(), KEY_A_US)).not.toBe(base);
    expect(token(item(), KEY_A_EU, [], '2026-11-29', { Name: 'other' })).not.toBe(base);
  });

  it('moves on past a failed copy and past the day, so that a later run can retry a copy that failed', () => {
    expect(token(item(), KEY_A_EU, ['ami-0aaaaaaaaaaaaaaaa'])).not.toBe(token());
    expect(token(item(), KEY_A_EU, [], '2026-11-30')).not.toBe(token());
  });

  it('fits the 64-character ASCII limit of ClientToken', () => {
    const t = token({ ...item(), executionName: 'x'.repeat(80) });
    expect(t.length).toBeLessThanOrEqual(64);
    expect(t).toMatch(/^[\x21-\x7e]+$/);
  });
});

describe('copyStatus', () => {
  it('counts a pending copy as one more attempt and waits 120 seconds next', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });

    const result = await copyStatus(item(), copyState(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, { ImageIds: [COPY_ID] });
    expect(result).toEqual(copyState({ state: 'pending', attempt: 1, waitSeconds: 120, checkedAt: '2026-11-29T12:00:00.000Z' }));
  });

  it.each([
    [120, 240],
    [1200, 2400],
    [3000, 3600],
  ])('without progress, after waiting %i seconds waits %i (doubling, capped at an hour)', async (previous, wait) => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'pending' }] });

    const result = await copyStatus(item(), copyState({ attempt: 2, waitSeconds: previous }), deps());

    expect(result.attempt).toBe(3);
    expect(result.waitSeconds).toBe(wait);
    expect(result.progress).toBeNull();
  });

  it("waits from the snapshots' progress until a little before the copy can be done", async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [{ ImageId: COPY_ID, State: 'pending', BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1' } }] }],
    });
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '50%', State: 'pending' }] });
    // Ten minutes in and at least 50 % done (under 51 %): done no sooner than 576 s from now; wait until 60 s before.
    const started = new Date(fixedNow().getTime() - 600_000).toISOString();

    const result = await copyStatus(item(), copyState({ startedAt: started }), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotsCommand, { SnapshotIds: ['snap-0aaaaaaaaaaaaaaa1'] });
    expect(result).toMatchObject({ state: 'pending', progress: 50, attempt: 1, waitSeconds: 517 });
  });

  it('waits without progress when the target role may not read snapshots (a template from before)', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [{ ImageId: COPY_ID, State: 'pending', BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1' } }] }],
    });
    ec2Mock.on(DescribeSnapshotsCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));

    const result = await copyStatus(item(), copyState({ waitSeconds: 120 }), deps());

    expect(result).toMatchObject({ state: 'pending', progress: null, attempt: 1, waitSeconds: 240 });
  });

  it('keeps looking itself, every 10 s, at a copy that may be done within the approach window', async () => {
    let now = fixedNow().getTime();
    const slept: number[] = [];
    const pending = PENDING_COPY;
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [pending] })
      .resolvesOnce({ Images: [pending] })
      .resolves({ Images: [{ ...pending, State: 'available', Tags: [], SourceImageId: SOURCE_IMAGE, SourceImageRegion: 'eu-west-1' }] });
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '98%', State: 'pending' }] });
    ec2Mock.on(CreateTagsCommand).resolves({});
    const started = new Date(now - 50 * 60_000).toISOString();

    const result = await copyStatus(item(), copyState({ startedAt: started }), {
      ...deps(),
      now: () => new Date(now),
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
    });

    expect(slept).toEqual([10_000, 10_000]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 3);
    expect(result).toMatchObject({ state: 'available', progress: 100, waitSeconds: 0, attempt: 0 });
  });

  it('looks again 2 s after a throttled look of the approach (not a full poll later), instead of failing the invocation', async () => {
    let now = fixedNow().getTime();
    const slept: number[] = [];
    const pending = PENDING_COPY;
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [pending] })
      .rejectsOnce(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))
      .rejectsOnce(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))
      .resolves({ Images: [{ ...pending, State: 'available', Tags: [], SourceImageId: SOURCE_IMAGE, SourceImageRegion: 'eu-west-1' }] });
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '98%', State: 'pending' }] });
    ec2Mock.on(CreateTagsCommand).resolves({});

    const result = await copyStatus(item(), copyState({ startedAt: new Date(now - 50 * 60_000).toISOString() }), {
      ...deps(),
      now: () => new Date(now),
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
    });

    // A poll, then 2 s and 4 s after each throttled look (doubling, at most a poll).
    expect(slept).toEqual([10_000, 2_000, 4_000]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 4);
    expect(result).toMatchObject({ state: 'available', progress: 100 });
  });

  it("throws the throttling when the approach's last look was throttled, so the state machine's Retry looks again soon", async () => {
    let now = fixedNow().getTime();
    const pending = PENDING_COPY;
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [pending] })
      .resolvesOnce({ Images: [pending] })
      .rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '99%', State: 'pending' }] });

    await expect(
      copyStatus(
        item(),
        copyState({ startedAt: new Date(now - 3 * 3600_000).toISOString(), deadline: new Date(now + 25_000).toISOString() }),
        { ...deps(), now: () => new Date(now), sleep: async (ms: number) => void (now += ms) },
      ),
    ).rejects.toMatchObject({ name: 'AwsThrottlingError' });
    // The first look, a poll at 10 s, at 20 s (throttled), 2 s later (throttled); 4 s more would pass the deadline.
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 4);
  });

  it('fails at once when a look of the approach fails for good (not throttling)', async () => {
    let now = fixedNow().getTime();
    const pending = PENDING_COPY;
    ec2Mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [pending] })
      .rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '98%', State: 'pending' }] });

    await expect(
      copyStatus(item(), copyState({ startedAt: new Date(now - 50 * 60_000).toISOString() }), {
        ...deps(),
        now: () => new Date(now),
        sleep: async (ms: number) => void (now += ms),
      }),
    ).rejects.not.toMatchObject({ name: 'AwsThrottlingError' });
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
  });

  it('stops looking itself at the deadline and leaves the timeout to the state machine', async () => {
    let now = fixedNow().getTime();
    const pending = PENDING_COPY;
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [pending] });
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Progress: '99%', State: 'pending' }] });

    const result = await copyStatus(
      item(),
      copyState({ startedAt: new Date(now - 3 * 3600_000).toISOString(), deadline: new Date(now + 25_000).toISOString() }),
      { ...deps(), now: () => new Date(now), sleep: async (ms: number) => void (now += ms) },
    );

    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 3);
    expect(result.state).toBe('pending');
    expect(Date.parse(result.checkedAt)).toBeLessThanOrEqual(now);
    expect(now - fixedNow().getTime()).toBe(20_000);
  });

  it('stops waiting once the copy is available and tags the image and its snapshots', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        {
          ImageId: COPY_ID,
          State: 'available',
          SourceImageId: SOURCE_IMAGE,
          SourceImageRegion: 'eu-west-1',
          Tags: [],
          BlockDeviceMappings: [
            { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', Encrypted: true, KmsKeyId: KEY_A_EU } },
            { DeviceName: '/dev/sdb', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa2', Encrypted: true, KmsKeyId: KEY_A_EU } },
            { DeviceName: '/dev/sdc', VirtualName: 'ephemeral0' },
          ],
        },
      ],
    });
    ec2Mock.on(CreateTagsCommand).resolves({});

    const result = await copyStatus(item(), copyState({ attempt: 3 }), deps());

    expect(result).toMatchObject({ state: 'available', waitSeconds: 0, attempt: 3 });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, {
      Resources: [COPY_ID, 'snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'],
      Tags: [
        { Key: 'ami-pipeline:source-image', Value: SOURCE_IMAGE },
        { Key: 'ami-pipeline:source-region', Value: 'eu-west-1' },
        { Key: 'ami-pipeline:source-account', Value: '999999999999' },
        { Key: 'ami-pipeline:kms-key', Value: KEY_A_EU },
        { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
        // Not visible when the run started it, so not tagged with the run then.
        { Key: 'ami-pipeline:execution', Value: 'exec-1' },
      ],
    });
  });

  it('tags the snapshots again even when the image already carries every tag, since DescribeImages does not show snapshot tags', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        {
          ImageId: COPY_ID,
          State: 'available',
          SourceImageId: SOURCE_IMAGE,
          SourceImageRegion: 'eu-west-1',
          Tags: [
            { Key: 'ami-pipeline:source-image', Value: SOURCE_IMAGE },
            { Key: 'ami-pipeline:source-region', Value: 'eu-west-1' },
            { Key: 'ami-pipeline:source-account', Value: '999999999999' },
            { Key: 'ami-pipeline:kms-key', Value: KEY_A_EU },
            { Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' },
          ],
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1' } }],
        },
      ],
    });
    ec2Mock.on(CreateTagsCommand).resolves({});

    await copyStatus(item(), copyState(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [COPY_ID, 'snap-0aaaaaaaaaaaaaaa1'] });
  });

  describe('once the copy is available', () => {
    const available = (overrides: Partial<Image> = {}): Image => ({
      ImageId: COPY_ID,
      State: 'available',
      SourceImageId: SOURCE_IMAGE,
      SourceImageRegion: 'eu-west-1',
      Tags: [],
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1' } }],
      ...overrides,
    });

    it('sets DeprecateAt copy.deprecateAfterDays from now with EnableImageDeprecation', async () => {
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available()] });
      ec2Mock.on(EnableImageDeprecationCommand).resolves({ Return: true });
      await copyStatus(item({}, { copy: { ...item().settings.copy, deprecateAfterDays: 30 } }), copyState(), deps());
      expect(ec2Mock).toHaveReceivedCommandWith(EnableImageDeprecationCommand, {
        ImageId: COPY_ID,
        DeprecateAt: new Date(fixedNow().getTime() + 30 * 86_400_000),
      });
    });

    it('leaves the deprecation alone when copy.deprecateAfterDays is null or the copy already has one', async () => {
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available()] });
      await copyStatus(item({}, { copy: { ...item().settings.copy, deprecateAfterDays: null } }), copyState(), deps());
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available({ DeprecationTime: '2027-11-30T10:00:00.000Z' })] });
      await copyStatus(item(), copyState(), deps());
      expect(ec2Mock).toHaveReceivedCommandTimes(EnableImageDeprecationCommand, 0);
    });

    it('ends the target with ProvenanceMismatchError when the copy descends from another image, before any deprecation', async () => {
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available({ SourceImageId: 'ami-0fffffffffffffff0' })] });
      const error = await copyStatus(item(), copyState(), deps()).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'ProvenanceMismatchError', retryable: false });
      expect((error as Error).message).toContain('reports source ami-0fffffffffffffff0 in eu-west-1');
      expect(ec2Mock).toHaveReceivedCommandTimes(EnableImageDeprecationCommand, 0);
    });

    it('ends the target with ProvenanceMismatchError when the copy comes from another region or reports no source', async () => {
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available({ SourceImageRegion: 'us-east-1' })] });
      await expect(copyStatus(item(), copyState(), deps())).rejects.toMatchObject({ name: 'ProvenanceMismatchError' });
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [available({ SourceImageId: undefined, SourceImageRegion: undefined })] });
      await expect(copyStatus(item(), copyState(), deps())).rejects.toMatchObject({ name: 'ProvenanceMismatchError' });
    });
  });

  it('throws the retryable ImageNotYetVisibleError while the new copy is not visible yet', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${COPY_ID}]' does not exist`));

    const error = await rejection(copyStatus(item(), copyState(), deps()));

    expect(error.name).toBe('ImageNotYetVisibleError');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(COPY_ID);
  });

  it('treats an empty DescribeImages answer as a copy not visible yet', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    const error = await rejection(copyStatus(item(), copyState(), deps()));
    expect(error.name).toBe('ImageNotYetVisibleError');
  });

  it('deregisters a failed copy and reports its state reason and the key to check', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [{ ImageId: COPY_ID, State: 'failed', StateReason: { Code: 'Server.InternalError', Message: 'Internal error' } }],
    });
    ec2Mock.on(DeregisterImageCommand).resolves({});

    const error = await rejection(copyStatus(item(), copyState(), deps()));

    expect(ec2Mock).toHaveReceivedCommandWith(DeregisterImageCommand, { ImageId: COPY_ID, DeleteAssociatedSnapshots: true });
    expect(error.name).toBe('ImageCopyFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'Server.InternalError', message: 'Internal error' });
    expect(error.message).toContain('is failed (Server.InternalError: Internal error)');
    expect(error.message).toContain(`Check that KMS key ${KEY_A_EU} is enabled`);
  });

  it('reports a copy that vanished as failed without trying to deregister it again', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'deregistered' }] });

    const error = await rejection(copyStatus(item(), copyState(), deps()));

    expect(error.name).toBe('ImageCopyFailedError');
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
  });

  it('translates other DescribeImages errors instead of waiting on them', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const error = await rejection(copyStatus(item(), copyState(), deps()));
    expect(error.name).toBe('AccessDeniedError');
  });
});

describe('findCopy', () => {
  const NO_COPY = { imageId: null, state: null, kmsKeyArn: null, deregistered: false };
  const keyTag = { Key: 'ami-pipeline:kms-key', Value: KEY_A_EU };

  it('returns the copy tagged with this execution and the key it is encrypted with', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'available', Tags: [keyTag] }] });

    const found = await findCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ['self'],
      Filters: [
        { Name: 'tag:ami-pipeline:source-image', Values: [SOURCE_IMAGE] },
        { Name: 'tag:ami-pipeline:execution', Values: ['exec-1'] },
      ],
    });
    expect(found).toEqual({ imageId: COPY_ID, state: 'available', kmsKeyArn: KEY_A_EU, deregistered: false });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
  });

  it('returns nulls when this execution made no copy', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
    expect(await findCopy(item(), deps())).toEqual(NO_COPY);
  });

  it('deregisters a failed copy it finds', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'failed', Tags: [keyTag] }] });
    ec2Mock.on(DeregisterImageCommand).resolves({});

    const found = await findCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DeregisterImageCommand, { ImageId: COPY_ID, DeleteAssociatedSnapshots: true });
    expect(found).toEqual({ imageId: COPY_ID, state: 'failed', kmsKeyArn: KEY_A_EU, deregistered: true });
  });

  it('prefers a live copy over one already deregistered', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: 'ami-0dddddddddddddddd', State: 'deregistered', CreationDate: '2026-11-29T11:30:00.000Z' },
        { ImageId: COPY_ID, State: 'pending', CreationDate: '2026-11-29T11:00:00.000Z', Tags: [keyTag] },
      ],
    });

    expect(await findCopy(item(), deps())).toEqual({ imageId: COPY_ID, state: 'pending', kmsKeyArn: KEY_A_EU, deregistered: false });
  });

  it('reports a copy already deregistered without deregistering it again', async () => {
    ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: COPY_ID, State: 'deregistered' }] });

    const found = await findCopy(item(), deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(DeregisterImageCommand, 0);
    expect(found).toEqual({ imageId: COPY_ID, state: 'deregistered', kmsKeyArn: null, deregistered: true });
  });

  it('returns nulls when the target role cannot be assumed', async () => {
    ec2Mock
      .on(DescribeImagesCommand)
      .rejects(new TargetRoleNotAssumableError(`Cannot assume arn:aws:iam::${ACCOUNT_A}:role/AmiPipelineTarget: AccessDenied: denied.`));
    expect(await findCopy(item(), deps())).toEqual(NO_COPY);
  });

  it('returns nulls when the target role may not describe images', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    expect(await findCopy(item(), deps())).toEqual(NO_COPY);
  });

  it('still throws a throttling error so the state machine retries', async () => {
    ec2Mock.on(DescribeImagesCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const error = await rejection(findCopy(item(), deps()));
    expect(error.name).toBe('AwsThrottlingError');
  });
});

describe('copyName', () => {
  it('names the copy after the source name and image by default', () => {
    expect(copyName(item(), fixedNow())).toBe(`base-image-2026-11-29 encrypted ${SOURCE_IMAGE}`);
  });

  it('fills the placeholders of a custom template', () => {
    const custom = item({ region: 'us-east-1' }, { copy: { ...item().settings.copy, name: '{sourceName}/{accountId}/{region}/{date}/{executionName}/{sourceImageId}', timeoutMinutes: 180 } });
    expect(copyName(custom, fixedNow())).toBe(`base-image-2026-11-29/${ACCOUNT_A}/us-east-1/2026-11-29/exec-1/${SOURCE_IMAGE}`);
  });

  it('drops unknown placeholders and replaces characters AMI names do not allow', () => {
    const custom = item({}, { copy: { ...item().settings.copy, name: 'golden:{unknown}#{date}+ü', timeoutMinutes: 180 } });
    const name = copyName(custom, fixedNow());
    expect(name).toBe('golden--2026-11-29--');
    expect(name).toMatch(AMI_NAME_CHARS);
  });

  it('keeps a long name within 128 AMI-name characters', () => {
    const long = { ...item(), source: { ...item().source, name: 'a very long name with {braces} & symbols '.repeat(10) } };
    const name = copyName(long, fixedNow());
    expect(name.length).toBeLessThanOrEqual(128);
    expect(name).toMatch(AMI_NAME_CHARS);
  });
});
