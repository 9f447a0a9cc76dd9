/**
 * The history budget that input validation enforces (functions/shared/budget.ts) must match what the definitions
 * really do: run a copy and a launch check that never finish on a virtual clock, count the poll trips, and count
 * the AWS history events each execution would write. Also: the wait schedule finds a copy quickly in few looks,
 * and the batch plan keeps every execution within the budget up to the largest run it admits.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  approachWindow,
  COPY_WAIT,
  copyNearlyDone,
  copyPollsWithin,
  EVENTS_PER_BATCH_FIXED,
  firstCopyWait,
  historyBudget,
  launchPollsWithin,
  MAX_HISTORY_EVENTS_PER_EXECUTION,
  MAX_PAIRS_PER_RUN,
  MAX_RUNNING_BATCHES,
  minCopyWait,
  nextCopyWait,
  planBatches,
} from '../../functions/shared/budget';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A } from '../support/fixtures';
import { loadDefinition, runDefinition, type EventLog, type Json, type RunResult } from '../../local/asl';
import { awsHistoryEvents as historyEvents, historyShape } from '../../local/history';
import { pipelineHandlers } from '../../bench/handlers';

/** History events AWS would write for one execution (Wait states counted as Waits, not as the virtual clock's Tasks). */
const shape = historyShape(loadDefinition());
const awsHistoryEvents = (events: EventLog[]) => historyEvents(events, shape);


/** Run on a virtual clock: every Wait state and every sleep of the functions moves it; nothing really waits. */
async function runOnVirtualClock(input: Json): Promise<RunResult> {
  let now = Date.parse('2026-11-29T00:00:00Z');
  const handlers = pipelineHandlers(
    () => new Date(now),
    async (ms) => {
      now += ms;
    },
  );
  return runDefinition(input, handlers, {
    waitHandler: async (state, stateInput) => {
      const path = String(state.SecondsPath ?? '').replace(/^\$\./, '').split('.');
      const seconds = typeof state.Seconds === 'number' ? state.Seconds : (path.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], stateInput) as number);
      now += seconds * 1000;
      return stateInput;
    },
  });
}

const count = (events: EventLog[], state: string) => events.filter((e) => e.type === 'StateEntered' && e.state?.name === state).length;
const batchOf = (run: RunResult) => run.executions.find((e) => e.stateMachine === 'DistributeStateMachine');

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
  it('give up on a copy after copy.timeoutMinutes within the polls and events the budget assumes', async () => {
    aws.copyPolls = Number.MAX_SAFE_INTEGER;
    const run = await runOnVirtualClock(input);
    const [result] = (run.manifest as { results: { error: { name: string; message: string } }[] }).results;
    expect(result?.error.name).toBe('ImageCopyTimeoutError');
    expect(result?.error.message).toContain('copy.timeoutMinutes');
    const polls = count(run.events, 'GetImageState');
    expect(polls).toBeGreaterThan(3);
    expect(polls).toBeLessThanOrEqual(copyPollsWithin(60 * 60));
    const budget = historyBudget(1, 60, 15);
    expect(awsHistoryEvents(batchOf(run)?.events ?? [])).toBeLessThanOrEqual(budget.batchEvents);
    expect(awsHistoryEvents(run.executions[0]?.events ?? [])).toBeLessThanOrEqual(budget.parentEvents);
  });

  it('give up on a launch after verify.timeoutMinutes, clean up, and stay within the budget', async () => {
    aws.stuckLaunches.add(`${ACCOUNT_A}/eu-west-1`);
    const run = await runOnVirtualClock(input);
    const [result] = (run.manifest as { results: { error: { name: string } }[] }).results;
    expect(result?.error.name).toBe('LaunchCheckTimeoutError');
    const polls = count(run.events, 'GetLaunchState');
    expect(polls).toBeGreaterThan(2);
    expect(polls).toBeLessThanOrEqual(launchPollsWithin(15 * 60));
    expect(aws.groups.size).toBe(0);
    expect(awsHistoryEvents(batchOf(run)?.events ?? [])).toBeLessThanOrEqual(historyBudget(1, 60, 15).batchEvents);
  });
});

describe('the copy wait schedule', () => {
  /** Looks (status checks) and detection delay for a copy of `minutes` whose progress grows linearly, as integers. */
  function follow(minutes: number): { looks: number; delay: number } {
    const duration = minutes * 60;
    const percentAt = (x: number) => (x >= duration ? 100 : Math.floor((100 * x) / duration));
    let t = firstCopyWait(8);
    let wait = t;
    for (let looks = 1; looks < 100; looks += 1) {
      let percent = percentAt(t);
      if (percent < 100 && copyNearlyDone(t, percent)) {
        // The status check keeps looking itself, every approachPoll seconds.
        const until = t + approachWindow(t);
        while (percent < 100 && t + COPY_WAIT.approachPoll <= until) {
          t += COPY_WAIT.approachPoll;
          percent = percentAt(t);
        }
      }
      if (percent >= 100) return { looks, delay: t - duration };
      wait = nextCopyWait({ elapsed: t, percent, previousWait: wait, untilDeadline: 3 * 3600 });
      t += wait;
    }
    throw new Error('never found');
  }

  it.each([5, 10, 20, 30, 60, 120, 170])('finds a %i-minute copy in at most 4 looks and within a minute of it finishing', (minutes) => {
    const { looks, delay } = follow(minutes);
    expect(looks).toBeLessThanOrEqual(4);
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(60);
  });

  it('sizes the first wait from the snapshots and never waits less than the spacing allows', () => {
    expect(firstCopyWait(8)).toBe(120);
    expect(firstCopyWait(1)).toBe(COPY_WAIT.firstMin);
    expect(firstCopyWait(10_000)).toBe(COPY_WAIT.firstMax);
    // Progress that says "done any second" still cannot make the loop spin.
    expect(nextCopyWait({ elapsed: 3000, percent: 99, previousWait: 60, untilDeadline: 9000 })).toBeGreaterThanOrEqual(minCopyWait(3000));
    // Without progress, it backs off.
    expect(nextCopyWait({ elapsed: 600, percent: null, previousWait: 120, untilDeadline: 9000 })).toBe(240);
    // Never far past the deadline.
    expect(nextCopyWait({ elapsed: 600, percent: null, previousWait: 1200, untilDeadline: 30 })).toBe(31);
  });
});

describe('the batch plan', () => {
  it('runs 1,000 targets at once in 40 batch executions, each within the budget', () => {
    const budget = historyBudget(1000, 180, 15);
    expect(budget).toMatchObject({ batches: MAX_RUNNING_BATCHES, runningBatches: MAX_RUNNING_BATCHES, batchSize: 25, perBatchConcurrency: 25 });
    expect(budget.batchEvents).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
    expect(budget.parentEvents).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
    expect(budget.maxPairs).toBe(MAX_PAIRS_PER_RUN);
  });

  it('keeps small runs one target per batch, all at once', () => {
    expect(planBatches(6, null, 25)).toEqual({ batchSize: 1, batches: 6, runningBatches: 6, perBatchConcurrency: 1 });
  });

  it('honours maxConcurrency over the whole run', () => {
    expect(planBatches(100, 10, 25)).toEqual({ batchSize: 3, batches: 34, runningBatches: 10, perBatchConcurrency: 1 });
    expect(planBatches(1000, 200, 25)).toEqual({ batchSize: 25, batches: 40, runningBatches: 40, perBatchConcurrency: 5 });
  });

  it('admits fewer targets when long timeouts make each one costlier', () => {
    const long = historyBudget(1, 48 * 60, 60);
    expect(long.perTarget).toBeGreaterThan(historyBudget(1, 180, 15).perTarget);
    expect(EVENTS_PER_BATCH_FIXED + long.maxBatchSize * long.perTarget).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
    expect(EVENTS_PER_BATCH_FIXED + (long.maxBatchSize + 1) * long.perTarget).toBeGreaterThan(MAX_HISTORY_EVENTS_PER_EXECUTION);
  });
});
