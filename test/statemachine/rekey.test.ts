/**
 * Key replacement (mode "rekey"): each target's published copy is re-encrypted with its new key inside the
 * account, granted, verified and published; the pipeline's grants on the old key are revoked. Idempotent and
 * resumable. The real definition over the in-memory AWS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseInput } from '../../functions/shared/input';
import { runDefinition, type Json } from '../../local/asl';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { pipelineHandlers } from '../../bench/handlers';
import { checkEventsAndRestore, manifestOf } from '../support/run-output';

const REGION = 'eu-west-1';
const PARAMETER = '/ami-pipeline/base/latest';
const ASG = (account: string) => `arn:aws:iam::${account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
let aws: FakeAws;
const oldKeys: Record<string, string> = {};
const newKeys: Record<string, string> = {};

const targets = (alias: string) => [ACCOUNT_A, ACCOUNT_B].map((accountId) => ({ accountId, regions: [REGION], kmsKey: alias }));
const rekeyInput: Json = { mode: 'rekey', targets: targets('alias/ami-encryption-2'), publish: { parameterName: PARAMETER } };
const published = (account: string) => aws.targetParameters.get(`${account}/${REGION}/${PARAMETER}`)?.value ?? '';
const grantsOn = (key: string, account: string) => aws.grants.filter((g) => g.KeyId === key && g.GranteePrincipal === ASG(account));

beforeEach(async () => {
  aws = new FakeAws();
  for (const account of [ACCOUNT_A, ACCOUNT_B]) {
    oldKeys[account] = aws.addKey(account, REGION);
    newKeys[account] = aws.addKey(account, REGION, 'alias/ami-encryption-2');
  }
  const first = await runDefinition(
    { source: { imageId: aws.addSourceImage(REGION), region: REGION }, targets: targets('alias/ami-encryption'), publish: { parameterName: PARAMETER } },
    pipelineHandlers(),
    { executionName: 'distribute' },
  );
  expect(manifestOf(first).status).toBe('SUCCEEDED');
});
afterEach(() => checkEventsAndRestore(aws));

describe('rekey', () => {
  it('re-encrypts each published copy with the new key, moves the parameter and the grant, revokes the old grant', async () => {
    const before = { a: published(ACCOUNT_A), calls: aws.calls.length };
    const run = await runDefinition(rekeyInput, pipelineHandlers(), { executionName: 'rekey-1' });
    expect(run.error).toBeUndefined();
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    for (const account of [ACCOUNT_A, ACCOUNT_B]) {
      const result = manifest.results.find((r) => r.accountId === account);
      expect(result?.kmsKeyArn).toBe(newKeys[account]);
      expect(published(account)).toBe(result?.imageId);
      const copy = aws.images.get(result?.imageId ?? '');
      expect(copy).toMatchObject({ account, region: REGION, kmsKeyId: newKeys[account], state: 'available' });
      expect(grantsOn(newKeys[account] ?? '', account)).toHaveLength(1);
      expect(grantsOn(oldKeys[account] ?? '', account)).toHaveLength(0);
    }
    expect(published(ACCOUNT_A)).not.toBe(before.a);
    const rekeyCalls = aws.calls.slice(before.calls);
    // The copy happens inside each target from its own published copy; nothing is shared from the builder account.
    expect(rekeyCalls.filter((c) => c.command === 'ModifyImageAttribute')).toEqual([]);
    expect(rekeyCalls.filter((c) => c.command === 'CopyImage').map((c) => [c.account, c.input.SourceRegion, c.input.KmsKeyId])).toEqual(
      expect.arrayContaining([[ACCOUNT_A, REGION, newKeys[ACCOUNT_A]], [ACCOUNT_B, REGION, newKeys[ACCOUNT_B]]]),
    );
  });

  it('makes nothing new when run again', async () => {
    await runDefinition(rekeyInput, pipelineHandlers(), { executionName: 'rekey-1' });
    const copies = aws.callsTo('CopyImage').length;
    const grants = aws.grants.length;
    const again = await runDefinition(rekeyInput, pipelineHandlers(), { executionName: 'rekey-2' });
    expect(manifestOf(again).status).toBe('SUCCEEDED');
    expect(aws.callsTo('CopyImage')).toHaveLength(copies);
    expect(aws.grants).toHaveLength(grants);
  });

  it('finishes the rest on a second run after a partial failure', async () => {
    aws.failingLaunches.set(`${ACCOUNT_B}/${REGION}`, 'Client.InternalError: Client error on launch');
    const publishedB = published(ACCOUNT_B);
    const partial = manifestOf(await runDefinition(rekeyInput, pipelineHandlers(), { executionName: 'rekey-partial' }));
    expect(partial.status).toBe('PARTIAL');
    expect(partial.results.find((r) => r.accountId === ACCOUNT_B)?.error?.name).toBe('LaunchFailedError');
    // B keeps its parameter and its old grant: nothing switched before the new copy was verified.
    expect(published(ACCOUNT_B)).toBe(publishedB);
    expect(grantsOn(oldKeys[ACCOUNT_B] ?? '', ACCOUNT_B)).toHaveLength(1);
    aws.failingLaunches.clear();
    const copiesBefore = aws.callsTo('CopyImage').map((c) => c.account);
    const resumed = manifestOf(await runDefinition(rekeyInput, pipelineHandlers(), { executionName: 'rekey-resume' }));
    expect(resumed.status).toBe('SUCCEEDED');
    const newCopies = aws.callsTo('CopyImage').slice(copiesBefore.length).map((c) => c.account);
    expect(newCopies).not.toContain(ACCOUNT_A);
    expect(published(ACCOUNT_B)).toBe(resumed.results.find((r) => r.accountId === ACCOUNT_B)?.imageId);
    expect(grantsOn(oldKeys[ACCOUNT_B] ?? '', ACCOUNT_B)).toHaveLength(0);
  });

  it('fails a target with nothing published, naming the parameter', async () => {
    const other = { ...(rekeyInput as Record<string, Json>), publish: { parameterName: '/ami-pipeline/other/latest' } };
    const manifest = manifestOf(await runDefinition(other, pipelineHandlers(), { executionName: 'rekey-none' }));
    expect(manifest.status).toBe('FAILED');
    expect(manifest.results[0]?.error?.name).toBe('SourceImageNotFoundError');
    expect(manifest.results[0]?.error?.message).toContain('/ami-pipeline/other/latest');
  });
});

describe('a rekey input', () => {
  it.each([
    ['with a source', { ...(rekeyInput as Record<string, Json>), source: { imageId: 'ami-0123456789abcdef0', region: REGION } }, 'source: must be left out'],
    ['without a parameter', { mode: 'rekey', targets: targets('alias/ami-encryption-2') }, 'publish.parameterName: is required with mode rekey'],
    ['with a placeholder in the parameter', { ...(rekeyInput as Record<string, Json>), publish: { parameterName: '/ami/{sourceName}/latest' } }, 'without placeholders'],
  ])('is refused %s', (_name, input, message) => {
    expect(() => parseInput(input)).toThrow(message);
  });
});
