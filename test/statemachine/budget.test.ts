/**
 * The history budget that input validation enforces (functions/shared/budget.ts) must match what the definitions
 * really do: run a copy and a launch check that never finish on a virtual clock, count the poll trips, and count
 * the AWS history events each execution would write. Also: the wait schedule finds a copy quickly in few looks,
 * and every execution of the largest run admitted stays within the budget.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  approachWindow,
  COPY_WAIT,
  copyNearlyDone,
  copyPollsWithin,
  firstCopyWait,
  historyBudget,
  launchPollsWithin,
  MAX_HISTORY_EVENTS_PER_EXECUTION,
  MAX_PAIRS_PER_RUN,
  minCopyWait,
  nextCopyWait,
} from '../../functions/shared/budget';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A } from '../support/fixtures';
import { loadDefinition, runDefinition, type EventLog, type Json, type RunResult } from '../../local/asl';
import { awsHistoryEvents as historyEvents, historyShape } from '../../local/history';
import { pipelineHandlers } from '../../bench/handlers';
import { checkEventsAndRestore, manifestOf } from '../support/run-output';

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
const targetOf = (run: RunResult) => run.executions.find((e) => e.mapState !== undefined);

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
afterEach(() => checkEventsAndRestore(aws));

describe('the wait loops', () => {
  it('give up on a copy after copy.timeoutMinutes within the polls and events the budget assumes', async () => {
    aws.copyPolls = Number.MAX_SAFE_INTEGER;
    const run = await runOnVirtualClock(input);
    const [result] = manifestOf(run).results;
    expect(result?.error?.name).toBe('ImageCopyTimeoutError');
    expect(result?.error?.message).toContain('copy.timeoutMinutes');
    const polls = count(run.events, 'GetImageState');
    expect(polls).toBeGreaterThan(3);
    expect(polls).toBeLessThanOrEqual(copyPollsWithin(60 * 60));
    const budget = historyBudget(1, 60, 15);
    expect(awsHistoryEvents(targetOf(run)?.events ?? [])).toBeLessThanOrEqual(budget.perTarget);
    expect(awsHistoryEvents(run.executions[0]?.events ?? [])).toBeLessThanOrEqual(budget.parentEvents);
  });

  it('give up on a launch after verify.timeoutMinutes, clean up, and stay within the budget', async () => {
    aws.stuckLaunches.add(`${ACCOUNT_A}/eu-west-1`);
    const run = await runOnVirtualClock(input);
    const [result] = manifestOf(run).results;
    expect(result?.error?.name).toBe('LaunchCheckTimeoutError');
    const polls = count(run.events, 'GetLaunchState');
    expect(polls).toBeGreaterThan(2);
    expect(polls).toBeLessThanOrEqual(launchPollsWithin(15 * 60));
    expect(aws.groups.size).toBe(0);
    expect(awsHistoryEvents(targetOf(run)?.events ?? [])).toBeLessThanOrEqual(historyBudget(1, 60, 15).perTarget);
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
    // A copy still pending after a whole approach window is late on its progress: looked at again within 30 s.
    expect(nextCopyWait({ elapsed: 3600, percent: 99, previousWait: 540, untilDeadline: 9000, approached: true })).toBe(COPY_WAIT.min);
    expect(nextCopyWait({ elapsed: 3600, percent: 99, previousWait: 540, untilDeadline: 9000 })).toBeGreaterThanOrEqual(540);
  });
});

describe('the budget of a run', () => {
  it('keeps every execution of a 1,000-target run within the budget, whatever the number of targets', () => {
    const budget = historyBudget(1000, 180, 15);
    expect(budget.perTarget).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
    expect(budget.parentEvents).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
    expect(historyBudget(10, 180, 15).parentEvents).toBe(budget.parentEvents);
    expect(budget.maxPairs).toBe(MAX_PAIRS_PER_RUN);
  });

  it('runs every target at once unless maxConcurrency says fewer', () => {
    expect(historyBudget(6, 180, 15).running).toBe(6);
    expect(historyBudget(1000, 180, 15, 200).running).toBe(200);
  });

  it('gives a target more events when long timeouts allow more trips round its loops', () => {
    const long = historyBudget(1, 48 * 60, 60);
    expect(long.perTarget).toBeGreaterThan(historyBudget(1, 180, 15).perTarget);
    expect(long.perTarget).toBeLessThanOrEqual(MAX_HISTORY_EVENTS_PER_EXECUTION);
  });
});
