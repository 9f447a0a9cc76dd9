/**
 * ReadStoppedRun (functions/janitor.ts): what a pipeline execution that ended without its own cleanup had made, read
 * from Step Functions (DescribeExecution, GetExecutionHistory), for each status the janitor's rule lets through and
 * the cases it must leave alone. SummarizeCleanup: the cleanup Map Run's results, counted, the failures listed up to
 * a bound.
 */
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { janitor, MAX_LISTED, readStoppedRun, type CleanupSummary, type JanitorDeps } from '../../functions/janitor';
import { runFiles } from '../../functions/shared/run-store';
import { ACCOUNT_A, ACCOUNT_B, BUILDER, awsError, item, rejection, source } from '../support/fixtures';
import { memoryRunStore } from '../support/run-store';

const sfnMock = mockClient(SFNClient);
const MACHINE = `arn:aws:states:eu-west-1:${BUILDER}:stateMachine:encrypted-ami-pipeline-prod`;
const ARN = `arn:aws:states:eu-west-1:${BUILDER}:execution:encrypted-ami-pipeline-prod:run-7`;
const { target, settings } = item();
const targets = [target, { ...target, accountId: ACCOUNT_B, region: 'us-east-1' }];
const files = runFiles('runs-bucket', 'run-7');
const store = memoryRunStore();
const deps = (): JanitorDeps => ({ sfn: (region) => new SFNClient({ region }), pipelineStateMachineArn: MACHINE, store });
const plan = {
  executionName: 'run-7',
  skipped: false,
  skipReason: null,
  source,
  shareAccountIds: [ACCOUNT_A, ACCOUNT_B],
  targetCount: targets.length,
  maxConcurrency: 0,
  files,
  settings,
  organization: [],
  notify: { topicArn: `arn:aws:sns:eu-west-1:${BUILDER}:ami-pipeline` },
};

let id = 0;
const exited = (name: string, output: unknown): HistoryEvent => ({
  id: (id += 1),
  timestamp: new Date('2026-11-30T02:00:00Z'),
  type: 'TaskStateExited',
  stateExitedEventDetails: { name, output: JSON.stringify(output) },
});
const entered = (name: string): HistoryEvent => ({ id: (id += 1), timestamp: new Date('2026-11-30T02:00:00Z'), type: 'TaskStateEntered', stateEnteredEventDetails: { name } });

function execution(status: string, extra: Record<string, unknown> = {}) {
  sfnMock.on(DescribeExecutionCommand, { executionArn: ARN }).resolves({ executionArn: ARN, stateMachineArn: MACHINE, name: 'run-7', status: status as 'ABORTED', startDate: new Date(), ...extra });
}

beforeEach(() => {
  sfnMock.reset();
});

describe('readStoppedRun', () => {
  it.each([
    ['ABORTED', undefined, undefined, null],
    ['TIMED_OUT', 'States.Timeout', undefined, { name: 'States.Timeout', message: '' }],
    ['FAILED', 'States.DataLimitExceeded', 'The state/task returned a result with a size exceeding the maximum number of bytes service limit.', { name: 'States.DataLimitExceeded', message: 'The state/task returned a result with a size exceeding the maximum number of bytes service limit.' }],
  ])('cleans up after a run that ended %s: its source, shares, settings and every target from ResolveSource\'s output', async (status, error, cause, expected) => {
    execution(status, { ...(error ? { error } : {}), ...(cause ? { cause } : {}) });
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [entered('ResolveSource'), exited('ResolveSource', plan), entered('ShareSource'), exited('ShareSource', {}), entered('DistributeTargets')] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run).toMatchObject({
      cleanUp: true,
      announce: true,
      executionName: 'run-7',
      executionArn: ARN,
      status,
      error: expected,
      source,
      shareAccountIds: [ACCOUNT_A, ACCOUNT_B],
      settings,
      // The janitor's Distributed Map reads the targets file; its results go beside the run's.
      files: { bucket: files.bucket, targetsKey: files.targetsKey, cleanupPrefix: 'runs/run-7/janitor' },
      targetCount: 2,
      topicArn: plan.notify.topicArn,
    });
    expect(sfnMock).toHaveReceivedCommandWith(GetExecutionHistoryCommand, { executionArn: ARN, includeExecutionData: true });
  });

  it('reads every page of the history', async () => {
    execution('ABORTED');
    sfnMock
      .on(GetExecutionHistoryCommand)
      .resolvesOnce({ events: [entered('ResolveSource')], nextToken: 'page-2' })
      .resolves({ events: [exited('ResolveSource', plan)] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run.files?.targetsKey).toBe(files.targetsKey);
    expect(sfnMock).toHaveReceivedCommandWith(GetExecutionHistoryCommand, { nextToken: 'page-2' });
  });

  it('gives the Lambda error message of a FAILED run, not its JSON cause', async () => {
    execution('FAILED', { error: 'Runtime.ExitError', cause: JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: 'RequestId: 1 Error: Runtime exited' }) });
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [exited('ResolveSource', plan)] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run.error).toEqual({ name: 'Runtime.ExitError', message: 'RequestId: 1 Error: Runtime exited' });
  });

  it('leaves alone a FAILED run that reached NotifyCompletion: it cleaned up and announced itself', async () => {
    execution('FAILED', { error: 'RunFailedError', cause: '{}' });
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [exited('ResolveSource', plan), exited('UnshareSource', {}), exited('NotifyCompletion', {})] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run).toMatchObject({ cleanUp: false, announce: false, reason: expect.stringContaining('NotifyCompletion') as string });
  });

  it('cleans up a redriven run stopped after its retry started: its announcement before the redrive does not count', async () => {
    execution('ABORTED');
    const redriven: HistoryEvent = { id: (id += 1), timestamp: new Date('2026-11-30T03:00:00Z'), type: 'ExecutionRedriven', executionRedrivenEventDetails: { redriveCount: 1 } };
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [exited('ResolveSource', plan), exited('NotifyCompletion', {}), entered('FailRun'), redriven, exited('FailRun', {}), entered('ShareSource')] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run).toMatchObject({ cleanUp: true, announce: true, source });
  });

  it('announces, without cleanup, a run stopped before ResolveSource ended', async () => {
    execution('ABORTED');
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [entered('ResolveSource')] });

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run).toMatchObject({ cleanUp: false, announce: true, source: null, files: null, targetCount: 0 });
  });

  it.each(['SUCCEEDED', 'RUNNING', 'PENDING_REDRIVE'])('does nothing for a run that is %s', async (status) => {
    execution(status);

    const run = await readStoppedRun({ execution: { arn: ARN } }, deps());

    expect(run).toMatchObject({ cleanUp: false, announce: false, status });
    expect(sfnMock).toHaveReceivedCommandTimes(GetExecutionHistoryCommand, 0);
  });

  it("does nothing for a batch's execution or a Distributed Map child: their run cleans them up", async () => {
    sfnMock
      .on(DescribeExecutionCommand)
      .resolvesOnce({ executionArn: ARN, stateMachineArn: `${MACHINE.replace('-prod', '-distribute-prod')}`, status: 'ABORTED', startDate: new Date() })
      .resolvesOnce({ executionArn: ARN, stateMachineArn: MACHINE, mapRunArn: `${MACHINE}/map:1`, status: 'FAILED', startDate: new Date() });
    expect(await readStoppedRun({ execution: { arn: ARN } }, deps())).toMatchObject({ cleanUp: false, announce: false });
    expect(await readStoppedRun({ execution: { arn: ARN } }, deps())).toMatchObject({ cleanUp: false, announce: false });
    expect(sfnMock).toHaveReceivedCommandTimes(GetExecutionHistoryCommand, 0);
  });

  it('fails with AccessDeniedError when the role may not read the execution', async () => {
    sfnMock.on(DescribeExecutionCommand).rejects(awsError('AccessDeniedException', 'User is not authorized to perform: states:DescribeExecution'));

    const error = await rejection(readStoppedRun({ execution: { arn: ARN } }, deps()));

    expect(error.name).toBe('AccessDeniedError');
  });
});

describe('summarizeCleanup', () => {
  const MAP_RUN = `arn:aws:states:eu-west-1:${BUILDER}:mapRun:encrypted-ami-pipeline-janitor-prod/Cleanup:1`;
  const mapRun = { MapRunArn: MAP_RUN, ResultWriterDetails: { Bucket: 'runs-bucket', Key: 'runs/run-7/janitor/1/manifest.json' } };
  const childInput = (accountId: string, region: string) => JSON.stringify({ item: { executionName: 'run-7', target: { accountId, region } } });

  /** ResultWriter's files for `cleaned` targets that succeeded and `failed` that ended CleanupFailed, plus one child that timed out. */
  async function written(cleaned: number, failed: number) {
    const succeeded = Array.from({ length: cleaned }, (_, i) => ({
      Status: 'SUCCEEDED',
      Input: childInput(ACCOUNT_A, `r-${i}`),
      Output: JSON.stringify({ accountId: ACCOUNT_A, region: `r-${i}`, launchCheck: { name: 'ami-pipeline-verify-x', autoScalingGroupDeleted: i === 0, launchTemplateDeleted: i === 0, terminatedInstanceIds: [] }, copy: { deregistered: i < 2 }, error: null }),
    }));
    const failing = Array.from({ length: failed }, (_, i) => ({
      Status: 'FAILED',
      Input: childInput(ACCOUNT_B, `r-${i}`),
      Error: 'TargetNotCleanedUp',
      Cause: JSON.stringify({ accountId: ACCOUNT_B, region: `r-${i}`, error: { name: 'AccessDeniedError', message: 'not authorized' } }),
    }));
    const timedOut = { Status: 'TIMED_OUT', Input: childInput(ACCOUNT_B, 'eu-west-3'), Error: 'States.Timeout', Cause: '' };
    await store.putJson('runs-bucket', 'runs/run-7/janitor/1/SUCCEEDED_0.json', succeeded);
    await store.putJson('runs-bucket', 'runs/run-7/janitor/1/FAILED_0.json', [...failing, timedOut]);
    await store.putJson('runs-bucket', mapRun.ResultWriterDetails.Key, {
      DestinationBucket: 'runs-bucket',
      MapRunArn: MAP_RUN,
      ResultFiles: { SUCCEEDED: [{ Key: 'runs/run-7/janitor/1/SUCCEEDED_0.json' }], FAILED: [{ Key: 'runs/run-7/janitor/1/FAILED_0.json' }] },
    });
  }

  it('counts what was removed and lists the targets not cleaned up, with the error that stopped each', async () => {
    await written(3, 1);

    const summary = (await janitor({ action: 'summarize', mapRun }, deps())) as CleanupSummary;

    expect(summary).toEqual({
      targets: 5,
      cleanedUp: 3,
      notCleanedUp: 2,
      launchChecksRemoved: 1,
      copiesDeregistered: 2,
      failed: [
        { accountId: ACCOUNT_B, region: 'r-0', error: { name: 'AccessDeniedError', message: 'not authorized' } },
        // A child that timed out has no line of its own: its target comes from its input, its error from Step Functions.
        { accountId: ACCOUNT_B, region: 'eu-west-3', error: { name: 'States.Timeout', message: '' } },
      ],
      mapRunArn: MAP_RUN,
      results: 's3://runs-bucket/runs/run-7/janitor/1/manifest.json',
    });
  });

  it(`lists at most ${MAX_LISTED} targets not cleaned up, whatever their number, and counts them all`, async () => {
    await written(0, 1_000);

    const summary = (await janitor({ action: 'summarize', mapRun }, deps())) as CleanupSummary;

    expect(summary.notCleanedUp).toBe(1_001);
    expect(summary.failed).toHaveLength(MAX_LISTED);
  });

  it('refuses an event without the Map Run, naming the field', async () => {
    const error = await rejection(janitor({ action: 'summarize' }, deps()));

    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain('mapRun');
  });
});
