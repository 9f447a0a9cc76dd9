import { EC2Client, ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { handler, modifyAttributes, type ModifyAttributesEvent } from '../../functions/modify-attributes';
import { ACCOUNT_A, ACCOUNT_B, SOURCE_IMAGE, SOURCE_SNAPSHOT, awsError, rejection, source, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);

const DATA_SNAPSHOT = 'snap-0fedcba9876543210';
const ACCOUNT_C = '333333333333';

/**
 * Shares with A, B and C. B already had launch permission and volume permission on the root snapshot
 * before the run; C already had volume permission on the data snapshot.
 */
function event(action: 'share' | 'unshare', overrides: Partial<ModifyAttributesEvent> = {}): ModifyAttributesEvent {
  return {
    action,
    executionName: 'exec-1',
    source: {
      ...source,
      snapshotIds: [SOURCE_SNAPSHOT, DATA_SNAPSHOT],
      preexistingShares: {
        launchPermission: [ACCOUNT_B],
        createVolumePermission: { [SOURCE_SNAPSHOT]: [ACCOUNT_B], [DATA_SNAPSHOT]: [ACCOUNT_C] },
      },
    },
    shareAccountIds: [ACCOUNT_A, ACCOUNT_B, ACCOUNT_C],
    ...overrides,
  };
}

const deps = () => ({ clients: testClients() });
const users = (...ids: string[]) => ids.map((UserId) => ({ UserId }));

function imageInputs() {
  return ec2Mock.commandCalls(ModifyImageAttributeCommand).map((c) => c.args[0].input);
}
function snapshotInputs() {
  return ec2Mock.commandCalls(ModifySnapshotAttributeCommand).map((c) => c.args[0].input);
}

beforeEach(() => {
  ec2Mock.reset();
  ec2Mock.on(ModifyImageAttributeCommand).resolves({});
  ec2Mock.on(ModifySnapshotAttributeCommand).resolves({});
});

describe('modifyAttributes share', () => {
  it('adds launch permission for the target accounts that lacked it', async () => {
    const result = await modifyAttributes(event('share'), deps());
    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(ModifyImageAttributeCommand, {
      ImageId: SOURCE_IMAGE,
      LaunchPermission: { Add: users(ACCOUNT_A, ACCOUNT_C) },
    });
    expect(imageInputs()).toEqual([{ ImageId: SOURCE_IMAGE, LaunchPermission: { Add: users(ACCOUNT_A, ACCOUNT_C) } }]);
    expect(result).toEqual({
      action: 'share',
      imageId: SOURCE_IMAGE,
      accountIds: [ACCOUNT_A, ACCOUNT_C],
      snapshotIds: [SOURCE_SNAPSHOT, DATA_SNAPSHOT],
      imageGone: false,
    });
  });

  it('adds volume permission on each snapshot for the accounts that lacked it there', async () => {
    await modifyAttributes(event('share'), deps());
    expect(ec2Mock).toHaveReceivedCommandWith(ModifySnapshotAttributeCommand, {
      SnapshotId: SOURCE_SNAPSHOT,
      Attribute: 'createVolumePermission',
      OperationType: 'add',
      CreateVolumePermission: { Add: users(ACCOUNT_A, ACCOUNT_C) },
    });
    expect(snapshotInputs()).toEqual([
      { SnapshotId: SOURCE_SNAPSHOT, Attribute: 'createVolumePermission', OperationType: 'add', CreateVolumePermission: { Add: users(ACCOUNT_A, ACCOUNT_C) } },
      { SnapshotId: DATA_SNAPSHOT, Attribute: 'createVolumePermission', OperationType: 'add', CreateVolumePermission: { Add: users(ACCOUNT_A, ACCOUNT_B) } },
    ]);
  });

  it('modifies the image in its own region', async () => {
    const e = event('share');
    e.source.region = 'ap-southeast-2';
    await modifyAttributes(e, deps());
    const client = ec2Mock.call(0).thisValue as EC2Client;
    expect(await client.config.region()).toBe('ap-southeast-2');
  });

  it('calls nothing when every account already had every permission', async () => {
    const result = await modifyAttributes(event('share', { shareAccountIds: [ACCOUNT_B] }), deps());
    expect(ec2Mock).not.toHaveReceivedCommand(ModifyImageAttributeCommand);
    expect(snapshotInputs()).toEqual([
      { SnapshotId: DATA_SNAPSHOT, Attribute: 'createVolumePermission', OperationType: 'add', CreateVolumePermission: { Add: users(ACCOUNT_B) } },
    ]);
    expect(result.accountIds).toEqual([]);
    expect(result.snapshotIds).toEqual([DATA_SNAPSHOT]);
  });

  it('calls nothing when there is no account to share with', async () => {
    const result = await modifyAttributes(event('share', { shareAccountIds: [] }), deps());
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(result).toEqual({ action: 'share', imageId: SOURCE_IMAGE, accountIds: [], snapshotIds: [], imageGone: false });
  });

  it('shares with many accounts in batches of 50', async () => {
    const many = Array.from({ length: 120 }, (_, n) => String(400000000000 + n));
    const e = event('share', { shareAccountIds: many });
    e.source.snapshotIds = [SOURCE_SNAPSHOT];
    await modifyAttributes(e, deps());
    const batches = imageInputs().map((i) => i.LaunchPermission?.Add?.map((p) => p.UserId));
    expect(batches.map((b) => b?.length)).toEqual([50, 50, 20]);
    expect(batches.flat()).toEqual(many);
    expect(snapshotInputs().map((i) => i.CreateVolumePermission?.Add?.length)).toEqual([50, 50, 20]);
  });

  it('refuses a snapshot encrypted with the AWS managed key with a terminal error quoting AWS', async () => {
    ec2Mock
      .on(ModifySnapshotAttributeCommand)
      .rejects(awsError('InvalidParameter', "Snapshots encrypted with the AWS Managed CMK can't be shared."));
    const error = await rejection(modifyAttributes(event('share'), deps()));
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'InvalidParameter', message: "Snapshots encrypted with the AWS Managed CMK can't be shared." });
    expect(error.message).toContain("Snapshots encrypted with the AWS Managed CMK can't be shared.");
    expect(error.message).toContain(SOURCE_SNAPSHOT);
    expect(error.message).toContain('AWS managed key cannot be shared');
  });

  it('does not treat a deregistered image as done when sharing', async () => {
    ec2Mock
      .on(ModifyImageAttributeCommand)
      .rejects(awsError('InvalidAMIID.NotFound', `The image id '[${SOURCE_IMAGE}]' does not exist`));
    const error = await rejection(modifyAttributes(event('share'), deps()));
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.aws?.code).toBe('InvalidAMIID.NotFound');
    expect(ec2Mock).not.toHaveReceivedCommand(ModifySnapshotAttributeCommand);
  });

  it('turns throttling into a retryable AwsThrottlingError', async () => {
    ec2Mock.on(ModifyImageAttributeCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const error = await rejection(modifyAttributes(event('share'), deps()));
    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
  });

  it('names the missing permission when the pipeline role may not share', async () => {
    ec2Mock.on(ModifyImageAttributeCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const error = await rejection(modifyAttributes(event('share'), deps()));
    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('ec2:ModifyImageAttribute');
  });
});

describe('modifyAttributes unshare', () => {
  it('removes exactly the permissions the run added, never the pre-existing ones', async () => {
    const result = await modifyAttributes(event('unshare'), deps());
    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(ModifyImageAttributeCommand, {
      ImageId: SOURCE_IMAGE,
      LaunchPermission: { Remove: users(ACCOUNT_A, ACCOUNT_C) },
    });
    expect(imageInputs()).toEqual([{ ImageId: SOURCE_IMAGE, LaunchPermission: { Remove: users(ACCOUNT_A, ACCOUNT_C) } }]);
    expect(snapshotInputs()).toEqual([
      { SnapshotId: SOURCE_SNAPSHOT, Attribute: 'createVolumePermission', OperationType: 'remove', CreateVolumePermission: { Remove: users(ACCOUNT_A, ACCOUNT_C) } },
      { SnapshotId: DATA_SNAPSHOT, Attribute: 'createVolumePermission', OperationType: 'remove', CreateVolumePermission: { Remove: users(ACCOUNT_A, ACCOUNT_B) } },
    ]);
    expect(result).toEqual({
      action: 'unshare',
      imageId: SOURCE_IMAGE,
      accountIds: [ACCOUNT_A, ACCOUNT_C],
      snapshotIds: [SOURCE_SNAPSHOT, DATA_SNAPSHOT],
      imageGone: false,
    });
  });

  it('reports a deregistered image as gone and still unshares its snapshots', async () => {
    ec2Mock
      .on(ModifyImageAttributeCommand)
      .rejects(awsError('InvalidAMIID.NotFound', `The image id '[${SOURCE_IMAGE}]' does not exist`));
    const result = await modifyAttributes(event('unshare'), deps());
    expect(result.imageGone).toBe(true);
    expect(result.snapshotIds).toEqual([SOURCE_SNAPSHOT, DATA_SNAPSHOT]);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifySnapshotAttributeCommand, 2);
    expect(ec2Mock).toHaveReceivedCommandWith(ModifySnapshotAttributeCommand, { SnapshotId: DATA_SNAPSHOT, OperationType: 'remove' });
  });

  it('skips a snapshot that no longer exists and unshares the others', async () => {
    ec2Mock
      .on(ModifySnapshotAttributeCommand, { SnapshotId: SOURCE_SNAPSHOT })
      .rejects(awsError('InvalidSnapshot.NotFound', `The snapshot '${SOURCE_SNAPSHOT}' does not exist.`));
    const result = await modifyAttributes(event('unshare'), deps());
    expect(result.snapshotIds).toEqual([DATA_SNAPSHOT]);
    expect(result.imageGone).toBe(false);
    expect(ec2Mock).toHaveReceivedCommandWith(ModifySnapshotAttributeCommand, { SnapshotId: DATA_SNAPSHOT, OperationType: 'remove' });
  });

  it('gives up on a missing snapshot after its first batch', async () => {
    const many = Array.from({ length: 60 }, (_, n) => String(400000000000 + n));
    ec2Mock
      .on(ModifySnapshotAttributeCommand, { SnapshotId: SOURCE_SNAPSHOT })
      .rejects(awsError('InvalidSnapshot.NotFound', `The snapshot '${SOURCE_SNAPSHOT}' does not exist.`));
    const result = await modifyAttributes(event('unshare', { shareAccountIds: many }), deps());
    expect(snapshotInputs().map((i) => i.SnapshotId)).toEqual([SOURCE_SNAPSHOT, DATA_SNAPSHOT, DATA_SNAPSHOT]);
    expect(result.snapshotIds).toEqual([DATA_SNAPSHOT]);
  });

  it('does not skip a missing snapshot when sharing', async () => {
    ec2Mock
      .on(ModifySnapshotAttributeCommand, { SnapshotId: SOURCE_SNAPSHOT })
      .rejects(awsError('InvalidSnapshot.NotFound', `The snapshot '${SOURCE_SNAPSHOT}' does not exist.`));
    const error = await rejection(modifyAttributes(event('share'), deps()));
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.aws?.code).toBe('InvalidSnapshot.NotFound');
  });

  it('turns throttling of an unshare into a retryable AwsThrottlingError', async () => {
    ec2Mock.on(ModifySnapshotAttributeCommand).rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const error = await rejection(modifyAttributes(event('unshare'), deps()));
    expect(error.name).toBe('AwsThrottlingError');
  });
});

describe('modifyAttributes handler', () => {
  it.each([
    ['an unknown action', { ...event('share'), action: 'delete' }, 'event.action'],
    ['a missing source', { action: 'share', executionName: 'exec-1', shareAccountIds: [ACCOUNT_A] }, 'event.source'],
    ['account IDs that are not a list', { ...event('unshare'), shareAccountIds: ACCOUNT_A }, 'event.shareAccountIds'],
    ['no payload at all', null, 'event.'],
  ])('rejects %s with InvalidInputError and makes no AWS call', async (_what, payload, field) => {
    const error = await rejection(handler(payload));
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain(field);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('shares through the default clients for a well-formed payload', async () => {
    const result = await handler(event('share'));
    expect(result.accountIds).toEqual([ACCOUNT_A, ACCOUNT_C]);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyImageAttributeCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifySnapshotAttributeCommand, 2);
  });
});
