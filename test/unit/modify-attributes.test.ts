import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { modifyAttributes, type ModifyAttributesEvent, type UnshareSourceResult } from '../../functions/modify-attributes';
import { createClientFactory } from '../../functions/shared/clients';
import { ledgerTags, readLedger } from '../../functions/shared/ledger';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B, rejection, source } from '../support/fixtures';

const ACCOUNT_C = '333333333333';
const REGION = 'eu-west-1';
const MACHINE = 'arn:aws:states:eu-west-1:999999999999:execution:encrypted-ami-pipeline-prod';
const arn = (name: string) => `${MACHINE}:${name}`;

let aws: FakeAws;
let imageId: string;
let snapshotId: string;

beforeEach(() => {
  aws = new FakeAws();
  imageId = aws.addSourceImage(REGION);
  snapshotId = aws.images.get(imageId)?.snapshotId ?? '';
});
afterEach(() => aws.restore());

function event(action: 'share' | 'unshare', executionName: string, shareAccountIds = [ACCOUNT_A, ACCOUNT_B]): ModifyAttributesEvent {
  return { action, executionName, executionArn: arn(executionName), source: { ...source, imageId, region: REGION, snapshotIds: [snapshotId] }, shareAccountIds };
}
const run = (e: ModifyAttributesEvent) => modifyAttributes(e, { clients: createClientFactory(REGION) });
const unshare = async (name: string) => (await run(event('unshare', name))) as UnshareSourceResult;
const launch = () => [...(aws.images.get(imageId)?.launchPermission ?? [])].sort();
const volume = () => [...(aws.snapshotPermissions.get(snapshotId) ?? [])].sort();
const imageLedger = () => readLedger(aws.images.get(imageId)?.tags ?? []);

describe('ShareSource', () => {
  it('records its claim on the image and each snapshot before it adds the permissions', async () => {
    const result = await run(event('share', 'run-1'));
    expect(result).toMatchObject({ action: 'share', accountIds: [ACCOUNT_A, ACCOUNT_B], snapshotIds: [snapshotId], handShared: [] });
    expect(launch()).toEqual([ACCOUNT_A, ACCOUNT_B]);
    expect(volume()).toEqual([ACCOUNT_A, ACCOUNT_B]);
    expect(imageLedger()).toEqual([{ executionName: 'run-1', executionArn: arn('run-1'), accountIds: [ACCOUNT_A, ACCOUNT_B] }]);
    expect(readLedger(aws.snapshotTags.get(snapshotId) ?? [])).toEqual(imageLedger());
    const order = aws.calls.map((c) => c.command).filter((c) => /^(CreateTags|Modify\w+Attribute)$/.test(c));
    expect(order).toEqual(['CreateTags', 'ModifyImageAttribute', 'CreateTags', 'ModifySnapshotAttribute']);
  });

  it('leaves an account the image was shared with by hand out of its claim', async () => {
    aws.images.get(imageId)?.launchPermission.add(ACCOUNT_B);
    const result = await run(event('share', 'run-1'));
    expect(result).toMatchObject({ accountIds: [ACCOUNT_A], handShared: [ACCOUNT_B] });
    expect(imageLedger()[0]?.accountIds).toEqual([ACCOUNT_A]);
  });

  it('claims an account another run shared with, so that run ending does not revoke it', async () => {
    await run(event('share', 'run-1'));
    const second = await run(event('share', 'run-2'));
    expect(second).toMatchObject({ accountIds: [], handShared: [] });
    expect(imageLedger().map((e) => [e.executionName, e.accountIds])).toEqual([
      ['run-1', [ACCOUNT_A, ACCOUNT_B]],
      ['run-2', [ACCOUNT_A, ACCOUNT_B]],
    ]);
  });

  it('refuses with ShareLedgerFullError when the claim does not fit in the 50 tags an image may carry', async () => {
    const image = aws.images.get(imageId);
    for (let i = 0; i < 48; i += 1) image?.tags.push({ Key: `team:${i}`, Value: 'x' });
    const error = await rejection(run(event('share', 'run-1', Array.from({ length: 30 }, (_, n) => String(400000000000 + n)))));
    expect(error.name).toBe('ShareLedgerFullError');
    expect(error.message).toContain('needs 3 tags');
    expect(launch()).toEqual([]);
  });
});

describe('UnshareSource', () => {
  it('revokes its own share and removes its ledger entry', async () => {
    await run(event('share', 'run-1'));
    const result = await unshare('run-1');
    expect(result).toMatchObject({ revoked: true, accountIds: [ACCOUNT_A, ACCOUNT_B], snapshotIds: [snapshotId], executions: [], left: [] });
    expect(launch()).toEqual([]);
    expect(volume()).toEqual([]);
    expect(imageLedger()).toEqual([]);
    expect(aws.snapshotTags.get(snapshotId)).toEqual([]);
  });

  it('never revokes a share made by hand, and says so', async () => {
    aws.images.get(imageId)?.launchPermission.add(ACCOUNT_B);
    await run(event('share', 'run-1'));
    const result = await unshare('run-1');
    expect(launch()).toEqual([ACCOUNT_B]);
    expect(result.accountIds).toEqual([ACCOUNT_A]);
    expect(result.left).toEqual([{ accountId: ACCOUNT_B, resourceId: imageId, reason: 'shared-by-hand' }]);
    expect(result.revoked).toBe(true);
  });

  it('revokes the share of an earlier run that is no longer running (stopped, failed, timed out)', async () => {
    await run(event('share', 'interrupted', [ACCOUNT_A, ACCOUNT_C]));
    aws.executions.set(arn('interrupted'), 'ABORTED');
    await run(event('share', 'run-2'));
    const result = await unshare('run-2');
    expect(launch()).toEqual([]);
    expect(result.accountIds.sort()).toEqual([ACCOUNT_A, ACCOUNT_B, ACCOUNT_C]);
    expect(result.executions).toEqual(['interrupted']);
    expect(imageLedger()).toEqual([]);
  });

  it('keeps what a running execution still needs and names it', async () => {
    await run(event('share', 'run-1', [ACCOUNT_A, ACCOUNT_C]));
    aws.executions.set(arn('run-1'), 'RUNNING');
    await run(event('share', 'run-2'));
    const result = await unshare('run-2');
    expect(launch()).toEqual([ACCOUNT_A, ACCOUNT_C]);
    expect(volume()).toEqual([ACCOUNT_A, ACCOUNT_C]);
    expect(result.accountIds).toEqual([ACCOUNT_B]);
    expect(result.revoked).toBe(true);
    expect(result.left.filter((l) => l.resourceId === imageId)).toEqual([
      { accountId: ACCOUNT_A, resourceId: imageId, reason: 'execution-running', executionName: 'run-1', executionStatus: 'RUNNING' },
      { accountId: ACCOUNT_C, resourceId: imageId, reason: 'execution-running', executionName: 'run-1', executionStatus: 'RUNNING' },
    ]);
    expect(imageLedger().map((e) => e.executionName)).toEqual(['run-1']);
  });

  it('revokes the share of an execution Step Functions does not know', async () => {
    await run(event('share', 'local-run'));
    await run(event('share', 'run-2', [ACCOUNT_A]));
    const result = await unshare('run-2');
    expect(result.executions).toEqual(['local-run']);
    expect(launch()).toEqual([]);
  });

  it('keeps the share of an execution whose state cannot be read, and does not call it revoked', async () => {
    await run(event('share', 'run-1'));
    const liveness = async () => ({ running: null, status: 'AccessDeniedException' });
    const result = (await modifyAttributes(event('unshare', 'run-2'), { clients: createClientFactory(REGION), liveness })) as UnshareSourceResult;
    expect(launch()).toEqual([ACCOUNT_A, ACCOUNT_B]);
    expect(result.revoked).toBe(false);
    expect(result.left[0]).toMatchObject({ accountId: ACCOUNT_A, reason: 'execution-unknown', executionName: 'run-1', executionStatus: 'AccessDeniedException' });
  });

  it('still revokes the snapshots of an image deregistered during the run', async () => {
    await run(event('share', 'run-1'));
    aws.images.delete(imageId);
    const result = await unshare('run-1');
    expect(result.imageGone).toBe(true);
    expect(result.snapshotIds).toEqual([snapshotId]);
    expect(volume()).toEqual([]);
  });
});

describe('a run sharing while another revokes (docs/concurrent-runs.md)', () => {
  it('ShareSource adds back a permission a revocation removed after its first read', async () => {
    await run(event('share', 'run-1'));
    aws.executions.set(arn('run-1'), 'SUCCEEDED');
    // run-1's UnshareSource removes the permissions while run-2 writes its claim.
    aws.hooks.beforeCall = (call) => {
      if (call.command === 'CreateTags' && (call.input.Resources as string[]).includes(imageId) && JSON.stringify(call.input).includes('run-2')) aws.images.get(imageId)?.launchPermission.clear();
    };
    const second = await run(event('share', 'run-2'));
    expect(second).toMatchObject({ accountIds: [ACCOUNT_A, ACCOUNT_B] });
    expect(launch()).toEqual([ACCOUNT_A, ACCOUNT_B]);
  });

  it('the last of two runs ending together revokes what each left to the other', async () => {
    await run(event('share', 'run-1'));
    await run(event('share', 'run-2'));
    aws.executions.set(arn('run-2'), 'RUNNING');
    // run-2 ends at the same moment: it read the ledger while run-1 was running, kept the share for it, and removed
    // its own entry just before run-1 removes its own.
    let raced = false;
    aws.hooks.beforeCall = (call) => {
      if (call.command === 'DeleteTags' && !raced) {
        raced = true;
        const image = aws.images.get(imageId);
        if (image) image.tags = image.tags.filter((t) => !t.Key?.includes('run-2'));
        aws.snapshotTags.set(snapshotId, (aws.snapshotTags.get(snapshotId) ?? []).filter((t) => !t.Key?.includes('run-2')));
      }
    };
    const result = await unshare('run-1');
    expect(launch()).toEqual([]);
    expect(volume()).toEqual([]);
    expect(result).toMatchObject({ revoked: true, accountIds: [ACCOUNT_A, ACCOUNT_B], snapshotIds: [snapshotId], left: [] });
  });

  it('UnshareSource gives back what a running run claimed after its read', async () => {
    await run(event('share', 'run-1'));
    aws.executions.set(arn('run-2'), 'RUNNING');
    let claimed = false;
    // run-2 writes its claim just after run-1 read the ledger, before run-1 removes the permissions.
    aws.hooks.beforeCall = (call) => {
      if (call.command === 'ModifyImageAttribute' && !claimed) {
        claimed = true;
        aws.images.get(imageId)?.tags.push(...ledgerTags('run-2', arn('run-2'), [ACCOUNT_A, ACCOUNT_B]));
      }
    };
    const result = await unshare('run-1');
    expect(launch()).toEqual([ACCOUNT_A, ACCOUNT_B]);
    expect(result.accountIds).toEqual([]);
    expect(result.left.filter((l) => l.resourceId === imageId)).toEqual([
      { accountId: ACCOUNT_A, resourceId: imageId, reason: 'execution-running', executionName: 'run-2', executionStatus: 'RUNNING' },
      { accountId: ACCOUNT_B, resourceId: imageId, reason: 'execution-running', executionName: 'run-2', executionStatus: 'RUNNING' },
    ]);
    expect(result.revoked).toBe(true);
  });
});

describe('the ledger tags', () => {
  it('pack 21 accounts per value and read back in order', () => {
    const accounts = Array.from({ length: 45 }, (_, n) => String(400000000000 + n));
    const tags = ledgerTags('run-1', arn('run-1'), accounts);
    expect(tags.map((t) => t.Key)).toEqual(['ami-pipeline:share:run-1', 'ami-pipeline:share:run-1:0', 'ami-pipeline:share:run-1:1', 'ami-pipeline:share:run-1:2']);
    expect(tags.every((t) => t.Value.length <= 256 && t.Key.length <= 128)).toBe(true);
    expect(readLedger([...tags].reverse())).toEqual([{ executionName: 'run-1', executionArn: arn('run-1'), accountIds: accounts }]);
  });
});
