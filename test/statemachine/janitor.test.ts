/**
 * The janitor's definition (statemachine/janitor.asl.yml) run with aws-local-stepfunctions and our functions over the
 * in-memory AWS, after a pipeline run that was stopped (as StopExecution does: no Catch, no cleanup state) while its
 * targets were verifying: it removes the launch checks, deregisters a copy that ended failed, revokes the run's share,
 * and sends the completion event with the status Step Functions gave; run again, it finds nothing more to remove.
 */
import { readFileSync } from 'node:fs';
import aslValidator from 'asl-validator';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allStates, deployedDefinition, loadDefinition, runDefinition, type Json, type RunResult } from '../../local/asl';
import { LOCAL_STATE_MACHINE_ARN, localExecutionArn } from '../../local/executions';
import { readLedger } from '../../functions/shared/ledger';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { pipelineHandlers } from '../../bench/handlers';
import { historyOf } from '../support/sfn-events';
import { checkEventsAndRestore, eventSummaries } from '../support/run-output';

const JANITOR_PATH = new URL('../../statemachine/janitor.asl.yml', import.meta.url);
const janitorDefinition = loadDefinition(JANITOR_PATH);
let aws: FakeAws;
let sourceImage: string;

const input = (): Json => ({
  source: { imageId: sourceImage, region: 'eu-west-1' },
  targets: [ACCOUNT_A, ACCOUNT_B].map((accountId) => ({ accountId, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' })),
});

/** Run the pipeline and stop it once both targets are verifying (their launch checks exist); record it as Step Functions would. */
async function stoppedRun(name: string, status: string, error?: { error: string; cause: string }): Promise<{ arn: string; run: RunResult }> {
  for (const account of [ACCOUNT_A, ACCOUNT_B]) aws.stuckLaunches.add(`${account}/eu-west-1`);
  aws.copyPolls = 0;
  const controller = new AbortController();
  let verifying = 0;
  const run = await runDefinition(input(), pipelineHandlers(), {
    executionName: name,
    signal: controller.signal,
    settleMs: 1_000,
    onEvent: (e) => {
      if (e.type === 'StateExited' && e.state?.name === 'StartLaunchCheck' && (verifying += 1) === 2) controller.abort();
    },
  });
  expect(run.aborted).toBe(true);
  const arn = localExecutionArn(name);
  aws.executions.set(arn, status);
  aws.executionDetails.set(arn, { stateMachineArn: LOCAL_STATE_MACHINE_ARN, name, ...(error ?? {}) });
  aws.histories.set(arn, historyOf(run.executions[0]?.events ?? []));
  return { arn, run };
}

/** The janitor as deployed: its children are executions of the janitor state machine. */
const JANITOR_MACHINE = { id: 'JanitorStateMachine', name: 'encrypted-ami-pipeline-janitor-local' };
const janitor = (arn: string, name = 'janitor-1') =>
  runDefinition({ execution: { arn } }, pipelineHandlers(), { definition: janitorDefinition, executionName: name, stateMachine: JANITOR_MACHINE });

const live = () => ({
  groups: [...aws.groups.values()].length,
  instances: [...aws.instances.values()].filter((i) => i.state !== 'terminated').length,
  templates: aws.templates.size,
});

beforeEach(() => {
  aws = new FakeAws();
  sourceImage = aws.addSourceImage('eu-west-1');
  for (const account of [ACCOUNT_A, ACCOUNT_B]) aws.addKey(account, 'eu-west-1');
});
afterEach(() => checkEventsAndRestore(aws));

describe('the janitor state machine', () => {
  it('is valid Amazon States Language; every Task has a timeout and retries Lambda errors with jitter', () => {
    const deployed = deployedDefinition(JANITOR_PATH);
    expect(aslValidator(structuredClone(deployed), { checkArn: false, checkPaths: true }).errors).toEqual([]);
    const tasks = allStates(deployed).filter(([, s]) => s.Type === 'Task');
    expect(tasks.map(([n]) => n).sort()).toEqual(['CleanUpLaunchCheck', 'FindTargetCopy', 'NotifyCompletion', 'ReadStoppedRun', 'SummarizeCleanup', 'UnshareSource']);
    for (const [name, state] of tasks) {
      expect(state.TimeoutSeconds, name).toBeTypeOf('number');
      const retry = state.Retry as { ErrorEquals: string[]; JitterStrategy?: string }[];
      expect(retry[0]?.ErrorEquals, name).toContain('Lambda.ServiceException');
      expect(retry.every((r) => r.JitterStrategy === 'FULL'), name).toBe(true);
    }
  });

  it('waits past the longest function timeout before cleaning up, so invocations the stop left running have ended', () => {
    const doc = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as { functions: Record<string, { timeout: number }> };
    const longest = Math.max(...Object.values(doc.functions).map((f) => f.timeout));
    const wait = janitorDefinition.definition.States.WaitForStoppedTasks as { Type: string; Seconds: number; Next: string };
    expect(wait.Type).toBe('Wait');
    expect(wait.Seconds).toBeGreaterThan(longest);
    expect((janitorDefinition.definition.States.IsCleanupNeeded as { Choices: { Next: string }[] }).Choices[0]?.Next).toBe('WaitForStoppedTasks');
    expect(wait.Next).toBe('CleanUpTargets');
  });

  it.each([
    ['ABORTED', undefined],
    ['TIMED_OUT', { error: 'States.Timeout', cause: '' }],
    ['FAILED', { error: 'States.DataLimitExceeded', cause: 'The state/task returned a result with a size exceeding the maximum number of bytes service limit.' }],
  ])('cleans up after a run that ended %s while verifying, and announces it with that status', async (status, error) => {
    const { arn } = await stoppedRun(`stopped-${status.toLowerCase().replace('_', '-')}`, status, error);
    expect(live().groups).toBe(2);
    expect(aws.images.get(sourceImage)?.launchPermission.size).toBe(2);
    // EC2 finished one copy after the stop, and it failed.
    const copyA = [...aws.images.values()].find((i) => i.account === ACCOUNT_A);
    if (copyA) copyA.state = 'failed';
    const copyB = [...aws.images.values()].find((i) => i.account === ACCOUNT_B);

    const result = await janitor(arn);

    expect(result.error).toBeUndefined();
    expect(live()).toEqual({ groups: 0, instances: 0, templates: 0 });
    expect(copyA?.state).toBe('deregistered');
    expect(copyB?.state).toBe('available');
    expect(aws.images.get(sourceImage)?.launchPermission.size).toBe(0);
    expect(readLedger(aws.images.get(sourceImage)?.tags ?? [])).toEqual([]);
    expect(aws.events).toHaveLength(1);
    expect(aws.events[0]?.DetailType).toBe('AMI Distribution Failed');
    const [detail] = eventSummaries(aws.events);
    expect(detail).toMatchObject({
      status,
      executionName: arn.split(':').at(-1),
      source: { imageId: sourceImage },
      sourceShare: { revoked: true, accountIds: [ACCOUNT_A, ACCOUNT_B] },
      error: error ? { name: error.error, message: error.cause } : null,
    });
    // The cleanup's summary: counts, and the Map Run's results in S3 (every target's line); nothing failed to list.
    expect(detail?.cleanup).toMatchObject({ targets: 2, cleanedUp: 2, notCleanedUp: 0, launchChecksRemoved: 2, copiesDeregistered: 1, failed: [] });
    expect(detail?.cleanup && 'results' in detail.cleanup ? detail.cleanup.results : null).toMatch(/^s3:\/\/.+\/runs\/stopped-[a-z-]+\/janitor\/.+\/manifest\.json$/);
    // One child execution per target, of the janitor's own state machine, under the Map's label.
    const children = result.executions.filter((e) => e.mapState === 'CleanUpTargets');
    expect(children.map((c) => c.stateMachine)).toEqual(['JanitorStateMachine', 'JanitorStateMachine']);
    expect(children.every((c) => c.arn.includes(':execution:encrypted-ami-pipeline-janitor-local/Cleanup:'))).toBe(true);
  });

  it('run again for the same execution, removes nothing more and fails nothing', async () => {
    const { arn } = await stoppedRun('stopped-twice', 'ABORTED');
    await janitor(arn, 'janitor-first');
    const calls = aws.calls.length;

    const again = await janitor(arn, 'janitor-again');

    expect(again.error).toBeUndefined();
    const mutating = aws.calls.slice(calls).filter((c) => /^(Delete|Terminate|Deregister|Modify)/.test(c.command));
    // The deletes are looked up first or answer "not found": nothing that still existed was touched.
    expect(mutating.filter((c) => c.command !== 'DeleteAutoScalingGroup')).toEqual([]);
    const detail = eventSummaries(aws.events).at(-1);
    expect(detail?.sourceShare).toMatchObject({ revoked: true, accountIds: [] });
    expect(detail?.cleanup).toMatchObject({ cleanedUp: 2, notCleanedUp: 0, launchChecksRemoved: 0, copiesDeregistered: 0 });
  });

  it('leaves alone a run that ended FAILED through its own FailRun (it cleaned up and announced itself)', async () => {
    aws.failingCopies.add(`${ACCOUNT_A}/eu-west-1`);
    const run = await runDefinition(input(), pipelineHandlers(), { executionName: 'failed-itself' });
    expect(run.error?.name).toBe('RunFailedError');
    const arn = localExecutionArn('failed-itself');
    aws.executions.set(arn, 'FAILED');
    aws.executionDetails.set(arn, { stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: 'failed-itself', error: 'RunFailedError' });
    aws.histories.set(arn, historyOf(run.executions[0]?.events ?? []));
    const events = aws.events.length;
    const calls = aws.calls.length;

    const result = await janitor(arn);

    expect(result.error).toBeUndefined();
    expect(result.events.some((e) => e.type === 'StateEntered' && e.state?.name === 'NothingToAnnounce')).toBe(true);
    expect(aws.events).toHaveLength(events);
    expect(aws.calls.slice(calls).map((c) => c.command)).toEqual(['DescribeExecution', 'GetExecutionHistory']);
  });
});
