/**
 * The large fan-out: the run's execution splits its targets into batch executions (RunBatch,
 * startExecution.sync:2 of statemachine/distribute.asl.yml), up to 40 at once, each running its targets at once.
 * Runs the real definitions over the in-memory AWS with 120 targets, and a batch execution that fails as a whole.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { historyBudget } from '../../functions/shared/budget';
import { loadDefinition, runDefinition, type EventLog, type Json, type TaskHandler } from '../../local/asl';
import { awsHistoryEvents as historyEvents, historyShape } from '../../local/history';

import type { Manifest } from '../../local/manifest';
import { FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers } from '../../bench/handlers';

/** History events AWS would write for one execution. */
const shape = historyShape(loadDefinition());
const awsHistoryEvents = (events: EventLog[]) => historyEvents(events, shape);

const REGIONS = ['eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'us-east-1', 'us-east-2', 'us-west-2', 'ap-southeast-2', 'ca-central-1'];
const ACCOUNTS = Array.from({ length: 12 }, (_, n) => String(500000000000 + n));


let aws: FakeAws;
let input: Json;
beforeEach(() => {
  aws = new FakeAws();
  for (const account of ACCOUNTS) for (const region of REGIONS) aws.addKey(account, region);
  input = {
    source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' },
    targets: ACCOUNTS.map((accountId) => ({ accountId, regions: REGIONS, kmsKey: 'alias/ami-encryption' })),
  };
});
afterEach(() => aws.restore());

describe('a run of 120 targets', () => {
  it('runs 40 batch executions of 3, all at once, and every target gets its verified copy', async () => {
    let running = 0;
    let most = 0;
    const base = pipelineHandlers();
    // Count targets in flight: entered PreflightTarget and not yet done (the copy is pending for two looks).
    const handlers: Record<string, TaskHandler> = {
      ...base,
      preflight: async (event) => {
        running += 1;
        most = Math.max(most, running);
        return (base.preflight as TaskHandler)(event);
      },
      retention: async (event) => {
        running -= 1;
        return (base.retention as TaskHandler)(event);
      },
    };
    aws.copyPolls = 2;

    const run = await runDefinition(input, handlers, { executionName: 'fanout' });

    expect(run.error).toBeUndefined();
    const manifest = run.manifest as unknown as Manifest;
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results).toHaveLength(120);
    expect(manifest.results.every((r) => r.status === 'succeeded' && r.launchCheck?.state === 'verified')).toBe(true);
    expect(new Set(manifest.results.map((r) => `${r.accountId}/${r.region}`)).size).toBe(120);
    expect(aws.callsTo('CopyImage')).toHaveLength(120);

    const batches = run.executions.filter((e) => e.stateMachine === 'DistributeStateMachine');
    expect(batches).toHaveLength(40);
    expect(batches.map((b) => b.name)).toEqual(Array.from({ length: 40 }, (_, i) => `fanout-b${String(i).padStart(3, '0')}`));
    expect(manifest.batches).toEqual(batches.map((b) => b.arn));
    // More targets at once than an inline Map's 40.
    expect(most).toBeGreaterThan(40);

    // The run's output stays small: one short line per target, the full lines are in the batches.
    expect(run.output).toMatchObject({ status: 'SUCCEEDED', targets: expect.arrayContaining([{ accountId: ACCOUNTS[0], region: 'eu-west-1', status: 'succeeded', error: null }]) });
    expect(JSON.stringify(run.output)).not.toContain('"results"');

    // Every execution within the budget validation works with.
    const budget = historyBudget(120, 180, 15);
    const [parent] = run.executions;
    expect(awsHistoryEvents(parent?.events ?? [])).toBeLessThanOrEqual(budget.parentEvents);
    for (const b of batches) expect(awsHistoryEvents(b.events)).toBeLessThanOrEqual(budget.batchEvents);

    expect([...aws.instances.values()].filter((i) => i.state !== 'terminated')).toEqual([]);
  }, 60_000);

  it('records a batch execution that fails as a whole, finishes the others and unshares the source', async () => {
    const base = pipelineHandlers();
    const broken = ACCOUNTS[0];
    // A copy step answering with a malformed payload makes its batch fail with States.Runtime, which no Catch
    // inside the batch takes: the failure Step Functions reports for a batch that fails or is stopped.
    const handlers: Record<string, TaskHandler> = {
      ...base,
      copyEncrypt: async (event) => {
        const e = event as { action: string; item?: { target?: { accountId?: string; region?: string } } };
        if (e.action === 'copy' && e.item?.target?.accountId === broken && e.item?.target?.region === 'eu-west-1') return { unexpected: true };
        return (base.copyEncrypt as TaskHandler)(event);
      },
    };

    const run = await runDefinition(input, handlers, { executionName: 'fanout-broken' });

    expect(run.error?.name).toBe('RunFailedError');
    const manifest = run.manifest as unknown as Manifest;
    expect(manifest.status).toBe('PARTIAL');
    expect(manifest.sourceShare.revoked).toBe(true);
    const failed = manifest.targets.filter((t) => t.status === 'failed');
    expect(failed).toEqual([{ batch: 0, accountId: null, region: null, status: 'failed', error: 'States.TaskFailed' }]);
    expect(manifest.batches[0]).toBeNull();
    // Batch 0 held this account's first three regions; the 117 other targets are done.
    expect(manifest.results.filter((r) => r.status === 'succeeded')).toHaveLength(117);
    expect(manifest.results.filter((r) => r.status === 'failed')).toEqual([
      expect.objectContaining({ accountId: '(batch)', region: 'batch 0', error: { name: 'States.TaskFailed', message: 'batch execution 0 failed' } }),
    ]);
    // What the failed batch's launch checks started is removed: nothing is left running.
    const cleanups = run.executions[0]?.events.filter((e) => e.type === 'StateEntered' && e.state?.name === 'CleanUpBatchTarget') ?? [];
    expect(cleanups).toHaveLength(3);
    expect([...aws.instances.values()].filter((i) => i.state !== 'terminated')).toEqual([]);
    expect(aws.groups.size).toBe(0);
  }, 60_000);
});
