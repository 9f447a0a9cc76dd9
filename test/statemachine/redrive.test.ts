/**
 * RedriveExecution over the local runner (local/redrive.ts, docs/fanout.md "Redrive"): the real definitions and
 * functions over the in-memory AWS. A redrive goes on with the same execution from its unsuccessful state and reruns
 * nothing that succeeded; a Map Run that did not finish redrives only its unsuccessful children, each from its own
 * unsuccessful state; what RedriveExecution refuses, it refuses with AWS's reason.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDefinition, redriveExecution, runDefinition, type ExecutionRecord, type Json, type RunResult } from '../../local/asl';
import { localExecutionArn } from '../../local/executions';
import { MAP_RUN_REDRIVES_MAX, runDistributedMap } from '../../local/distributed-map';
import { notRedrivableReason } from '../../local/redrive';
import { awsError, BUILDER, FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers, RUNS_BUCKET } from '../../bench/handlers';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { checkEventsAndRestore, manifestOf, summaryOf } from '../support/run-output';

let aws: FakeAws;
let input: Json;
beforeEach(() => {
  aws = new FakeAws();
  for (const account of [ACCOUNT_A, ACCOUNT_B]) aws.addKey(account, 'eu-west-1');
  input = {
    source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' },
    targets: [ACCOUNT_A, ACCOUNT_B].map((accountId) => ({ accountId, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' })),
  };
});
afterEach(() => checkEventsAndRestore(aws));

/** The target account a child execution works on. */
const accountOf = (e: ExecutionRecord) => ((e.events.find((ev) => ev.type === 'StateEntered')?.state?.input ?? {}) as { item?: { target?: { accountId?: string } } }).item?.target?.accountId;
const children = (run: RunResult) => run.executions.filter((e) => e.mapState === 'DistributeTargets');
const calls = (from: number, command: string, account?: string) => aws.calls.slice(from).filter((c) => c.command === command && (account === undefined || c.account === account));
const s3 = (key: string): unknown => JSON.parse(aws.objects.get(`${RUNS_BUCKET}/${key}`) ?? 'null') as unknown;
const sourceImageOf = (run: Json) => (run as { source: { imageId: string } }).source.imageId;
const entered = (e: ExecutionRecord) => e.events.filter((ev) => ev.type === 'StateEntered').map((ev) => ev.state?.name);

describe('RedriveExecution refuses', () => {
  it('a run that succeeded, one still running, one 14 days past its stop, and one it never ran, with the reason', async () => {
    const running = runDefinition(input, pipelineHandlers(), {
      executionName: 'redrive-running',
      onEvent: (e) => {
        if (e.type === 'StateEntered' && e.state?.name === 'ResolveSource') {
          refusedWhileRunning = redriveExecution(localExecutionArn('redrive-running'), pipelineHandlers()).catch((error: unknown) => error as Error);
        }
      },
    });
    let refusedWhileRunning: Promise<Error | RunResult> | undefined;
    const done = await running;
    expect(done.error).toBeUndefined();
    expect(await refusedWhileRunning).toMatchObject({ name: 'ExecutionNotRedrivable', message: expect.stringContaining('Execution is RUNNING and cannot be redriven') });

    await expect(redriveExecution(done.executionArn, pipelineHandlers())).rejects.toMatchObject({
      name: 'ExecutionNotRedrivable',
      message: expect.stringContaining('Execution is SUCCEEDED and cannot be redriven'),
    });
    await expect(redriveExecution(localExecutionArn('never-ran'), pipelineHandlers())).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });

    aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client.InternalError: Client error on launch');
    const failed = await runDefinition(input, pipelineHandlers(), { executionName: 'redrive-late' });
    expect(failed.error?.name).toBe('RunFailedError');
    const fifteenDaysOn = () => new Date(Date.now() + 15 * 86_400_000);
    await expect(redriveExecution(failed.executionArn, pipelineHandlers(), { now: fifteenDaysOn })).rejects.toMatchObject({
      name: 'ExecutionNotRedrivable',
      message: expect.stringContaining('Execution redrivable period exceeded'),
    });
  });
});

describe('a run stopped while its targets ran', () => {
  it('is redriven at its Map state: the succeeded child is kept, the stopped one goes on from its own unsuccessful state', async () => {
    aws.copyPolls = 0;
    const controller = new AbortController();
    // One target at a time: A ends, then B is stopped right after its grant.
    const stopped = await runDefinition({ ...(input as Record<string, Json>), maxConcurrency: 1 }, pipelineHandlers(), {
      executionName: 'redrive-stopped',
      signal: controller.signal,
      settleMs: 1_000,
      onEvent: (e, execution) => {
        if (e.type === 'StateExited' && e.state?.name === 'CreateKmsGrant' && accountOf(execution) === ACCOUNT_B) controller.abort();
      },
    });
    expect(stopped.aborted).toBe(true);
    const [first, second] = children(stopped);
    expect([accountOf(first!), first?.status]).toEqual([ACCOUNT_A, 'SUCCEEDED']);
    expect([accountOf(second!), second?.status]).toEqual([ACCOUNT_B, 'ABORTED']);
    expect(second?.resume?.state).toBe('StartLaunchCheck');
    const before = aws.calls.length;

    const redriven = await redriveExecution(stopped.executionArn, pipelineHandlers());

    expect(redriven.error).toBeUndefined();
    const [parent] = redriven.executions;
    expect(parent?.events[0]).toMatchObject({ type: 'ExecutionRedriven', redriveCount: 1 });
    expect(entered(parent!)[0]).toBe('DistributeTargets');
    // Only B's child ran, the same execution, resumed at the state it was stopped in.
    const again = children(redriven);
    expect(again.map((c) => [c.arn, c.redriveCount])).toEqual([[second?.arn, 1]]);
    expect(entered(again[0]!)[0]).toBe('StartLaunchCheck');
    expect(calls(before, 'CopyImage')).toEqual([]);
    expect(calls(before, 'CreateGrant')).toEqual([]);
    expect(calls(before, 'CreateAutoScalingGroup', ACCOUNT_A)).toEqual([]);
    // ShareSource succeeded before the stop: not run again; the unshare at the end is.
    expect(calls(before, 'ModifyImageAttribute').map((c) => Object.keys((c.input.LaunchPermission ?? {}) as object))).toEqual([['Remove']]);
    const manifest = manifestOf(redriven);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.map((r) => [r.accountId, r.status])).toEqual([
      [ACCOUNT_A, 'succeeded'],
      [ACCOUNT_B, 'succeeded'],
    ]);
    await expect(redriveExecution(stopped.executionArn, pipelineHandlers())).rejects.toMatchObject({ name: 'ExecutionNotRedrivable' });
  });
});

describe('a run whose target failed after its copy', () => {
  it('fails with RunFailedError; redriven once the cause is fixed, reruns only that target, reusing its copy, and succeeds', async () => {
    aws.copyPolls = 0;
    aws.failingLaunches.set(`${ACCOUNT_B}/eu-west-1`, 'Client.InternalError: Client error on launch');
    const failed = await runDefinition(input, pipelineHandlers(), { executionName: 'redrive-failed-target' });

    expect(failed.error?.name).toBe('RunFailedError');
    expect(summaryOf(failed)).toMatchObject({ status: 'PARTIAL', counts: { targets: 2, succeeded: 1, failed: 1 } });
    const first = manifestOf(failed);
    const copyOfB = first.results.find((r) => r.accountId === ACCOUNT_B)?.imageId;
    expect(copyOfB).toMatch(/^ami-/);
    expect(aws.images.get(copyOfB ?? '')?.state).toBe('available');
    const lineOfA = first.results.find((r) => r.accountId === ACCOUNT_A);

    aws.failingLaunches.delete(`${ACCOUNT_B}/eu-west-1`);
    const before = aws.calls.length;
    const redriven = await redriveExecution(failed.executionArn, pipelineHandlers());

    expect(redriven.error).toBeUndefined();
    const [parent] = redriven.executions;
    expect(entered(parent!).slice(0, 5)).toEqual(['FailRun', 'HasTargetsToRetry', 'UseRetryTargets', 'UseRetryShare', 'IsSharingNeeded']);
    // Only B ran again, in a new Map Run over the retry's targets file; nothing happened in A.
    expect(children(redriven).map(accountOf)).toEqual([ACCOUNT_B]);
    expect(s3(`runs/redrive-failed-target/retry-1.json`)).toEqual([expect.objectContaining({ accountId: ACCOUNT_B, region: 'eu-west-1' })]);
    expect(aws.calls.slice(before).filter((c) => c.account === ACCOUNT_A)).toEqual([]);
    // B found the copy it had made: no second copy.
    expect(calls(before, 'CopyImage')).toEqual([]);
    expect(calls(before, 'CreateAutoScalingGroup', ACCOUNT_B)).toHaveLength(1);
    // The source was shared again with B's account only, and the share revoked at the end.
    const launchPermission = calls(before, 'ModifyImageAttribute').map((c) => c.input.LaunchPermission as { Add?: { UserId: string }[]; Remove?: { UserId: string }[] });
    expect(launchPermission.map((p) => [p.Add?.map((u) => u.UserId), p.Remove?.map((u) => u.UserId)])).toEqual([
      [[ACCOUNT_B], undefined],
      [undefined, [ACCOUNT_B]],
    ]);
    expect(aws.images.get(sourceImageOf(input))?.launchPermission.size).toBe(0);

    // One manifest, both targets succeeded, in target order; A's line is the one its first attempt wrote.
    const manifest = manifestOf(redriven);
    expect(manifest).toMatchObject({ status: 'SUCCEEDED', counts: { targets: 2, succeeded: 2, failed: 0 }, sourceShare: { revoked: true } });
    expect(manifest.results.map((r) => [r.accountId, r.status])).toEqual([
      [ACCOUNT_A, 'succeeded'],
      [ACCOUNT_B, 'succeeded'],
    ]);
    expect(manifest.results[0]).toEqual(lineOfA);
    expect(manifest.results[1]?.imageId).toBe(copyOfB);
    expect(s3('runs/redrive-failed-target/manifest.json')).toEqual(manifest);
    expect(redriven.output).toMatchObject({ status: 'SUCCEEDED', counts: { targets: 2, succeeded: 2, failed: 0 } });
  });

  it('whose only failure was the unshare, reruns only the unshare when redriven', async () => {
    aws.copyPolls = 0;
    aws.hooks.beforeCall = (call) => {
      if (call.command === 'ModifyImageAttribute' && (call.input.LaunchPermission as { Remove?: unknown } | undefined)?.Remove) {
        throw awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.');
      }
    };
    const failed = await runDefinition(input, pipelineHandlers(), { executionName: 'redrive-unshare' });
    expect(failed.error?.name).toBe('RunFailedError');
    expect(summaryOf(failed)).toMatchObject({ status: 'SUCCEEDED', sourceShare: { revoked: false } });

    aws.hooks.beforeCall = undefined;
    const before = aws.calls.length;
    const redriven = await redriveExecution(failed.executionArn, pipelineHandlers());

    expect(redriven.error).toBeUndefined();
    expect(entered(redriven.executions[0]!)).toEqual(['FailRun', 'HasTargetsToRetry', 'IsUnshareNeeded', 'UnshareSource', 'RecordManifest', 'NotifyCompletion', 'IsRunClean', 'RunSucceeded']);
    expect(children(redriven)).toEqual([]);
    expect(aws.calls.slice(before).filter((c) => c.account !== BUILDER)).toEqual([]);
    expect(aws.images.get(sourceImageOf(input))?.launchPermission.size).toBe(0);
    expect(manifestOf(redriven)).toMatchObject({ status: 'SUCCEEDED', sourceShare: { revoked: true }, counts: { targets: 2, succeeded: 2, failed: 0 } });
  });
});

describe('what RedriveExecution and a Map Run redrive allow', () => {
  const stop = new Date('2026-11-01T00:00:00Z');
  const day = 86_400_000;

  it('redrives within 14 days of the stop and under 24,999 history events, as DescribeExecution says', () => {
    const failed = { status: 'FAILED' as const, stopDate: stop, historyEvents: 24_998 };
    expect(notRedrivableReason(failed, new Date(stop.getTime() + 14 * day))).toBeUndefined();
    expect(notRedrivableReason(failed, new Date(stop.getTime() + 14 * day + 1))).toBe('Execution redrivable period exceeded');
    expect(notRedrivableReason({ ...failed, historyEvents: 24_999 }, stop)).toBe('Execution history event limit exceeded');
    expect(notRedrivableReason({ ...failed, status: 'ABORTED' }, stop)).toBeUndefined();
    expect(notRedrivableReason({ ...failed, status: 'TIMED_OUT' }, stop)).toBeUndefined();
  });

  it('refuses the 1,001st redrive of a Map Run with States.Runtime, before any child runs', async () => {
    let children = 0;
    const previous = { arn: 'arn:aws:states:us-east-1:123456789012:mapRun:m/Targets:1', id: '1', inputs: [{}], children: [undefined], redriveCount: MAP_RUN_REDRIVES_MAX };
    const map = { name: 'DistributeTargets', state: { Type: 'Map', Label: 'Targets', ToleratedFailurePercentage: 100 } };
    const ctx = { executionName: 'x', executionArn: 'arn:x', stateMachineName: 'm', region: 'us-east-1', account: '123456789012', previous, runChild: () => Promise.reject(new Error(`child ${(children += 1)}`)) };
    await expect(runDistributedMap(map, {}, ctx)).rejects.toMatchObject({ name: 'States.Runtime' });
    expect(children).toBe(0);
  });
});

describe('a Map Run of Express children', () => {
  const definition = (type: 'STANDARD' | 'EXPRESS') => {
    const dir = mkdtempSync(join(tmpdir(), 'redrive-'));
    const file = join(dir, 'machine.asl.yml');
    const task = (fn: string, next: Record<string, unknown>) => ({ Type: 'Task', Resource: { 'Fn::GetAtt': [fn, 'Arn'] }, TimeoutSeconds: 10, ...next });
    const machine = {
      StartAt: 'Fan',
      States: {
        Fan: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: type }, StartAt: 'First', States: { First: task('first', { Next: 'Second' }), Second: task('second', { End: true }) } },
          End: true,
        },
      },
    };
    writeFileSync(file, JSON.stringify(machine));
    const loaded = loadDefinition(file);
    rmSync(dir, { recursive: true, force: true });
    return loaded;
  };

  it.each([
    ['STANDARD', 0],
    ['EXPRESS', 1],
  ] as const)('redrives a failed %s child from its failed state (Standard) or from its start (Express)', async (type, firstAgain) => {
    let firsts = 0;
    let broken = true;
    const handlers = {
      first: async () => ({ first: (firsts += 1) }),
      second: async () => {
        if (broken) throw Object.assign(new Error('not yet'), { name: 'LaunchFailedError' });
        return { second: true };
      },
    };
    const loaded = definition(type);
    const failed = await runDefinition({ items: [1] }, handlers, { definition: loaded, executionName: `redrive-${type.toLowerCase()}` });
    expect(failed.error?.name).toBe('States.ExceedToleratedFailureThreshold');
    const [child] = failed.executions.filter((e) => e.mapState === 'Fan');
    broken = false;
    firsts = 0;

    const redriven = await redriveExecution(failed.executionArn, handlers);

    expect(redriven.error).toBeUndefined();
    expect(firsts).toBe(firstAgain);
    const [again] = redriven.executions.filter((e) => e.mapState === 'Fan');
    // A Standard child is the same execution, redriven; an Express one is a new execution.
    expect(again?.arn === child?.arn).toBe(type === 'STANDARD');
  });
});
