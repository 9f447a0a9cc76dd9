/**
 * FailRun's retry plan and the RunFailedError cause (functions/shared/run-failure.ts): what a redrive reruns, what the
 * source is shared with again, and the summary read back from the Lambda error Step Functions records as the cause.
 */
import { describe, expect, it } from 'vitest';
import { planRetry, runFailureSummary, type RetryInput } from '../../functions/shared/run-failure';
import { runFiles } from '../../functions/shared/run-store';
import type { RunSummary, TargetResult } from '../../functions/shared/manifest-schema';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { memoryRunStore } from '../support/run-store';

const ACCOUNT_C = '333333333333';
const files = runFiles('runs-bucket', 'run-9');
const pair = (accountId: string, region: string) => ({ accountId, organizationalUnitId: null, region, kmsKey: 'alias/ami-encryption', subnetId: null });
const targets = [pair(ACCOUNT_A, 'eu-west-1'), pair(ACCOUNT_A, 'us-east-1'), pair(ACCOUNT_B, 'eu-west-1'), pair(ACCOUNT_C, 'eu-west-1')];
const summary: RunSummary = {
  status: 'PARTIAL',
  executionName: 'run-9',
  source: null,
  sourceShare: { revoked: true },
  counts: { targets: 4, succeeded: 2, failed: 2 },
  failed: [],
  manifest: { bucket: files.bucket, key: files.manifestKey, uri: `s3://${files.bucket}/${files.manifestKey}` },
  mapRunArn: null,
};

/** A target's line of the manifest (schema/manifest.schema.json), as RecordManifest wrote it. */
const line = (t: { accountId: string; region: string }, status: 'succeeded' | 'failed'): TargetResult => ({
  accountId: t.accountId,
  region: t.region,
  status,
  imageId: null,
  kmsKeyArn: null,
  grantId: null,
  launchCheck: null,
  error: status === 'failed' ? { name: 'LaunchFailedError', message: 'the launch check failed' } : null,
});

async function store() {
  const s = memoryRunStore();
  await s.putJson(files.bucket, files.targetsKey, targets);
  // A/eu-west-1 and C succeeded, A/us-east-1 failed, B has no line (its child never reported).
  await s.putJson(files.bucket, files.manifestKey, { ...summary, results: [line(targets[0]!, 'succeeded'), line(targets[1]!, 'failed'), line(targets[3]!, 'succeeded')] });
  return s;
}

const input = (over: Partial<RetryInput> = {}): RetryInput => ({
  redriveCount: 1,
  summary,
  files,
  shareAccountIds: [ACCOUNT_A, ACCOUNT_B, ACCOUNT_C],
  sourceShare: { revoked: true },
  ...over,
});

describe('planRetry', () => {
  it('retries every target whose line did not succeed, from a file of its own, shared with their accounts only', async () => {
    const s = await store();
    const plan = await planRetry(input(), s);
    expect(plan).toEqual({
      redriveCount: 1,
      targetCount: 2,
      files: { ...files, targetsKey: 'runs/run-9/retry-1.json', retry: 1 },
      shareAccountIds: [ACCOUNT_A, ACCOUNT_B],
    });
    expect(s.files.get('runs-bucket/runs/run-9/retry-1.json')).toEqual([targets[1], targets[2]]);
  });

  it("shares with all of the run's accounts again when the last unshare did not revoke its claim", async () => {
    const plan = await planRetry(input({ sourceShare: { revoked: false } }), await store());
    expect(plan.shareAccountIds).toEqual([ACCOUNT_A, ACCOUNT_B, ACCOUNT_C]);
  });

  it('plans no target when the manifest was not written, or every target succeeded: only the unshare and the manifest', async () => {
    const s = await store();
    expect(await planRetry(input({ summary: { ...summary, manifest: null } }), s)).toEqual({ redriveCount: 1, targetCount: 0, files, shareAccountIds: [ACCOUNT_A, ACCOUNT_B, ACCOUNT_C] });
    await s.putJson(files.bucket, files.manifestKey, { ...summary, results: targets.map((t) => line(t, 'succeeded')) });
    expect((await planRetry(input(), s)).targetCount).toBe(0);
    expect([...s.files.keys()].some((k) => k.includes('retry-'))).toBe(false);
  });
});

describe('planRetry reading the manifest back', () => {
  it('trusts no line of a manifest that does not match its schema: every target runs again', async () => {
    const s = await store();
    await s.putJson(files.bucket, files.manifestKey, { ...summary, results: targets.map((t) => ({ accountId: t.accountId, region: t.region, status: 'succeeded' })) });
    expect((await planRetry(input(), s)).targetCount).toBe(targets.length);
  });
});

describe('runFailureSummary', () => {
  it("reads the summary from FailRun's Lambda error, and from a bare summary cause", () => {
    const cause = JSON.stringify({ errorType: 'RunFailedError', errorMessage: JSON.stringify(summary), trace: [`RunFailedError: ${JSON.stringify(summary)}`, '    at failRun (/var/task/index.js:1:1)'] });
    expect(runFailureSummary(cause)).toEqual(summary);
    expect(runFailureSummary(JSON.stringify(summary))).toEqual(summary);
  });

  it('gives nothing for another cause, or a cause cut short', () => {
    expect(runFailureSummary(JSON.stringify({ errorType: 'AccessDeniedError', errorMessage: 'no', trace: [] }))).toBeUndefined();
    expect(runFailureSummary(JSON.stringify({ errorType: 'RunFailedError', errorMessage: JSON.stringify(summary) }).slice(0, 100))).toBeUndefined();
    expect(runFailureSummary(undefined)).toBeUndefined();
  });
});
