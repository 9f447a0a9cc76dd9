/**
 * The history budget that input validation enforces (functions/shared/budget.ts) must match what the definition
 * really does: run a copy and a launch check that never finish on a virtual clock, count the poll trips, and
 * count the AWS history events the run would write.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COPY_WAIT, historyBudget, LAUNCH_WAIT, pollsWithin } from '../../functions/shared/budget';
import { FakeAws } from '../support/fake-aws';
import { ACCOUNT_A } from '../support/fixtures';
import { runDefinition, type EventLog, type Json, type TaskHandler } from '../../local/asl';
import { pipelineHandlers } from '../support/pipeline';

/** History events AWS writes per state entered (Lambda tasks: entered, scheduled, started, succeeded, exited). */
const EVENTS_BY_TYPE: Record<string, number> = { Task: 5, Wait: 2, Choice: 2, Pass: 2, Parallel: 4, Map: 4, Succeed: 2, Fail: 1 };

function awsHistoryEvents(events: EventLog[]): number {
  let total = 2; // ExecutionStarted, ExecutionSucceeded/Failed
  for (const e of events) {
    if (e.type === 'StateEntered') total += EVENTS_BY_TYPE[e.state?.type ?? ''] ?? 2;
    if (e.type === 'StateRetried') total += 3;
    if (e.type === 'MapIterationStarted' || e.type === 'MapIterationSucceeded' || e.type === 'MapIterationFailed') total += 1;
  }
  return total;
}

/** Handlers on a virtual clock that moves by the wait each poll asked for. */
function onVirtualClock(): Record<string, TaskHandler> {
  let now = Date.parse('2026-11-29T00:00:00Z');
  const handlers = pipelineHandlers(() => new Date(now));
  const advance = (fn: string, key: 'copy' | 'launch', action: string): TaskHandler => async (event) => {
    const e = event as { action?: string } & Record<string, { waitSeconds?: number }>;
    if (e.action === action) now += (e[key]?.waitSeconds ?? 0) * 1000;
    return (handlers[fn] as TaskHandler)(event);
  };
  return { ...handlers, copyEncrypt: advance('copyEncrypt', 'copy', 'status'), verifyLaunch: advance('verifyLaunch', 'launch', 'check') };
}

const count = (events: EventLog[], state: string) => events.filter((e) => e.type === 'StateEntered' && e.state?.name === state).length;

let aws: FakeAws;
let input: Json;
beforeEach(() => {
  aws = new FakeAws();
  aws.addKey(ACCOUNT_A, 'eu-west-1');
  input = {
    source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' },
    targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }],
    copy: { timeoutMinutes: 60 },
    verify: { timeoutMinutes: 15 },
  };
});
afterEach(() => aws.restore());

describe('the wait loops', () => {
  it('give up on a copy after copy.timeoutMinutes with as many polls as the budget assumes', async () => {
    aws.copyPolls = Number.MAX_SAFE_INTEGER;
    const run = await runDefinition(input, onVirtualClock());
    const [result] = (run.manifest as { results: { error: { name: string; message: string } }[] }).results;
    expect(result?.error.name).toBe('ImageCopyTimeoutError');
    expect(result?.error.message).toContain('copy.timeoutMinutes');
    expect(count(run.events, 'GetImageState')).toBe(pollsWithin(COPY_WAIT, 60 * 60));
    expect(awsHistoryEvents(run.events)).toBeLessThanOrEqual(historyBudget(1, 60, 15).events);
  });

  it('give up on a launch after verify.timeoutMinutes, clean up, and stay within the budget', async () => {
    aws.stuckLaunches.add(`${ACCOUNT_A}/eu-west-1`);
    const run = await runDefinition(input, onVirtualClock());
    const [result] = (run.manifest as { results: { error: { name: string } }[] }).results;
    expect(result?.error.name).toBe('LaunchCheckTimeoutError');
    expect(count(run.events, 'GetLaunchState')).toBe(pollsWithin(LAUNCH_WAIT, 15 * 60));
    expect(aws.groups.size).toBe(0);
    const worstCase = historyBudget(1, 60, 15).events;
    expect(awsHistoryEvents(run.events)).toBeLessThanOrEqual(worstCase);
  });

  it('keep the largest input the budget admits below half the 25,000-event limit', () => {
    const budget = historyBudget(1, 180, 15);
    expect(historyBudget(budget.maxPairs, 180, 15).events).toBeLessThanOrEqual(12_500);
    expect(historyBudget(budget.maxPairs + 1, 180, 15).events).toBeGreaterThan(12_500);
  });
});
