/**
 * The large fan-out: the run's Distributed Map (DistributeTargets) reads the targets ResolveSource wrote to the
 * runs bucket, runs one child execution per target (statemachine/distribute.asl.yml, its ItemProcessor), and
 * writes the Map Run's results beside them; RecordManifest turns those into the run's manifest.
 * Runs the real definitions over the in-memory AWS with 120 targets, a failing target, and MaxConcurrency.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { historyBudget } from '../../functions/shared/budget';
import { loadDefinition, runDefinition, type EventLog, type Json, type TaskHandler } from '../../local/asl';
import { awsHistoryEvents as historyEvents, historyShape } from '../../local/history';
import { FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers, RUNS_BUCKET } from '../../bench/handlers';
import { checkEventsAndRestore, manifestOf, summaryOf } from '../support/run-output';

/** History events AWS would write for one execution. */
const shape = historyShape(loadDefinition());
const awsHistoryEvents = (events: EventLog[]) => historyEvents(events, shape);

const REGIONS = ['eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'us-east-1', 'us-east-2', 'us-west-2', 'ap-southeast-2', 'ca-central-1'];
const ACCOUNTS = Array.from({ length: 12 }, (_, n) => String(500000000000 + n));

let aws: FakeAws;
let input: Record<string, Json>;
beforeEach(() => {
  aws = new FakeAws();
  for (const account of ACCOUNTS) for (const region of REGIONS) aws.addKey(account, region);
  input = {
    source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' },
    targets: ACCOUNTS.map((accountId) => ({ accountId, regions: REGIONS, kmsKey: 'alias/ami-encryption' })),
  };
});
afterEach(() => checkEventsAndRestore(aws));

const s3Json = (key: string): unknown => JSON.parse(aws.objects.get(`${RUNS_BUCKET}/${key}`) ?? 'null') as unknown;

/** Handlers that count targets in flight: entered PreflightTarget and not yet at ApplyRetention. */
function counting(base: Record<string, TaskHandler>): { handlers: Record<string, TaskHandler>; most: () => number } {
  let running = 0;
  let most = 0;
  return {
    most: () => most,
    handlers: {
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
    },
  };
}

describe('a run of 120 targets', () => {
  it('runs one child execution per target, all at once, and keeps the manifest in S3 beside the Map Run results', async () => {
    const { handlers, most } = counting(pipelineHandlers());
    aws.copyPolls = 2;

    const run = await runDefinition(input, handlers, { executionName: 'fanout' });

    expect(run.error).toBeUndefined();
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results).toHaveLength(120);
    expect(manifest.results.every((r) => r.status === 'succeeded' && r.launchCheck?.state === 'verified')).toBe(true);
    expect(new Set(manifest.results.map((r) => `${r.accountId}/${r.region}`)).size).toBe(120);
    expect(aws.callsTo('CopyImage')).toHaveLength(120);

    // The targets file the ItemReader read, one child execution per item, the Map Run's results and the manifest.
    expect(s3Json('runs/fanout/targets.json')).toHaveLength(120);
    const children = run.executions.filter((e) => e.mapState === 'DistributeTargets');
    expect(children).toHaveLength(120);
    expect(children.every((c) => /^arn:aws:states:[a-z0-9-]+:\d{12}:execution:encrypted-ami-pipeline-local\/Targets:[0-9a-f-]{36}$/.test(c.arn))).toBe(true);
    const written = [...aws.objects.keys()].filter((k) => k.startsWith(`${RUNS_BUCKET}/runs/fanout/results/`));
    expect(written.map((k) => k.replace(/.*\//, '')).sort()).toEqual(['SUCCEEDED_0.json', 'manifest.json']);
    expect(s3Json('runs/fanout/manifest.json')).toEqual(manifest);
    expect(more(most())).toBe(true);

    // The run's output stays small: counts and where the manifest is.
    const summary = summaryOf(run);
    expect(summary).toMatchObject({
      status: 'SUCCEEDED',
      counts: { targets: 120, succeeded: 120, failed: 0 },
      failed: [],
      manifest: { bucket: RUNS_BUCKET, key: 'runs/fanout/manifest.json', uri: `s3://${RUNS_BUCKET}/runs/fanout/manifest.json` },
    });
    expect(summary.mapRunArn).toMatch(/:mapRun:encrypted-ami-pipeline-local\/Targets:/);
    expect(Buffer.byteLength(JSON.stringify(run.output))).toBeLessThan(2_000);

    // Every execution within the budget validation works with.
    const budget = historyBudget(120, 180, 15);
    const [parent] = run.executions;
    expect(awsHistoryEvents(parent?.events ?? [])).toBeLessThanOrEqual(budget.parentEvents);
    for (const c of children) expect(awsHistoryEvents(c.events)).toBeLessThanOrEqual(budget.perTarget);

    expect([...aws.instances.values()].filter((i) => i.state !== 'terminated')).toEqual([]);
  }, 90_000);

  it('fails only the broken target\'s child execution, finishes the others and unshares the source', async () => {
    const broken = ACCOUNTS[0] ?? '';
    aws.failingLaunches.set(`${broken}/eu-west-1`, 'Client.InternalError: Client error on launch');

    const run = await runDefinition(input, pipelineHandlers(), { executionName: 'fanout-broken' });

    expect(run.error?.name).toBe('RunFailedError');
    const summary = summaryOf(run);
    expect(summary).toMatchObject({ status: 'PARTIAL', counts: { targets: 120, succeeded: 119, failed: 1 } });
    expect(summary.failed).toEqual([{ accountId: broken, organizationalUnitId: null, region: 'eu-west-1', status: 'failed', error: 'LaunchFailedError' }]);
    const manifest = manifestOf(run);
    expect(manifest.sourceShare?.revoked).toBe(true);
    expect(manifest.results.filter((r) => r.status === 'failed')).toEqual([
      expect.objectContaining({ accountId: broken, region: 'eu-west-1', error: expect.objectContaining({ name: 'LaunchFailedError' }) }),
    ]);
    // The copy the failed target made is in its line, found after the failure.
    expect(manifest.results.find((r) => r.status === 'failed')?.imageId).toMatch(/^ami-/);

    // Its child execution failed with the target's error; ResultWriter kept its cause, the recorded line.
    const failedChildren = run.executions.filter((e) => e.mapState && e.error);
    expect(failedChildren.map((c) => c.error?.name)).toEqual(['LaunchFailedError']);
    const failedFile = [...aws.objects.keys()].find((k) => k.includes('/runs/fanout-broken/results/') && k.endsWith('FAILED_0.json')) ?? '';
    const [entry] = JSON.parse(aws.objects.get(failedFile) ?? '[]') as { Status: string; Error: string; Cause: string; Input: string }[];
    expect(entry).toMatchObject({ Status: 'FAILED', Error: 'LaunchFailedError' });
    expect(JSON.parse(entry?.Input ?? '{}')).toMatchObject({ item: { target: { accountId: broken, region: 'eu-west-1' } } });

    expect([...aws.instances.values()].filter((i) => i.state !== 'terminated')).toEqual([]);
    expect(aws.groups.size).toBe(0);
  }, 90_000);

  it('runs at most maxConcurrency targets at once', async () => {
    const { handlers, most } = counting(pipelineHandlers());
    aws.copyPolls = 2;

    const run = await runDefinition({ ...input, maxConcurrency: 7 }, handlers, { executionName: 'fanout-seven' });

    expect(run.error).toBeUndefined();
    expect(summaryOf(run).counts).toEqual({ targets: 120, succeeded: 120, failed: 0 });
    expect(most()).toBeLessThanOrEqual(7);
    expect(most()).toBeGreaterThan(1);
  }, 90_000);
});

/** More targets at once than an inline Map's 40. */
const more = (n: number) => n > 40;
