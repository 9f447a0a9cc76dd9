/**
 * The largest run validation accepts, through the real definitions with AWS's limits held by the local runner
 * (local/limits.ts: every state's input and output, task results, Map iteration inputs and the execution output at
 * most 262,144 bytes; causes at most 32,768 characters): 1,000 targets whose input is as large as an execution input
 * may be (the longest alias ARNs that fit, an 80-character execution name, a long parameter name), with publishing on
 * and no launch check, as the issue measured it. Over the in-memory AWS, not moto: 1,000 targets stay quick.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDefinition, runDefinition, type Json } from '../../local/asl';
import { LOCAL_STATE_MACHINE_ARN, localExecutionArn } from '../../local/executions';
import { CAUSE_MAX_CHARS, PAYLOAD_LIMIT_BYTES, payloadBytes } from '../../local/limits';
import { manifestSchema } from '../../functions/shared/manifest-schema';
import { FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers, RUNS_BUCKET } from '../../bench/handlers';
import { historyOf } from '../support/sfn-events';
import { checkEventsAndRestore, conforms, eventSummaries, manifestOf, summaryOf } from '../support/run-output';

const REGIONS = ['eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'ap-southeast-2'];
const ACCOUNTS = Array.from({ length: 100 }, (_, n) => String(600000000000 + n));
const NAME = `largest-${'x'.repeat(72)}`;

let aws: FakeAws;
beforeEach(() => {
  aws = new FakeAws();
});
afterEach(() => checkEventsAndRestore(aws));

/** 1,000 targets, each region's key an alias ARN `alias/<aliasLength characters>`. */
function inputWith(aliasLength: number, source: string): Record<string, Json> {
  return {
    source: { imageId: source, region: 'eu-west-1' },
    targets: ACCOUNTS.map((accountId) => ({
      accountId,
      regions: REGIONS,
      kmsKey: Object.fromEntries(REGIONS.map((r) => [r, `arn:aws:kms:${r}:${accountId}:alias/${'k'.repeat(aliasLength)}`])),
    })),
    verify: { mode: 'none' },
    publish: { parameterName: `/ami-pipeline/${'p'.repeat(200)}/latest` },
  };
}

/** The longest alias that keeps the execution input within 262,144 bytes (what StartExecution accepts). */
function largestInput(source: string): { input: Record<string, Json>; alias: number } {
  let alias = 1;
  while (payloadBytes(inputWith(alias + 1, source)) <= PAYLOAD_LIMIT_BYTES) alias += 1;
  return { input: inputWith(alias, source), alias };
}

function addKeys(alias: number): void {
  for (const account of ACCOUNTS) for (const region of REGIONS) aws.addKey(account, region, `alias/${'k'.repeat(alias)}`);
}

describe('the largest input', () => {
  it('runs 1,000 targets with the largest input to SUCCEEDED, every payload within 262,144 bytes, the manifest in S3', async () => {
    const { input, alias } = largestInput(aws.addSourceImage('eu-west-1'));
    addKeys(alias);
    expect(payloadBytes(input)).toBeGreaterThan(PAYLOAD_LIMIT_BYTES - 1_000);

    const run = await runDefinition(input, pipelineHandlers(), { executionName: NAME });

    expect(run.error).toBeUndefined();
    const summary = summaryOf(run);
    expect(summary).toMatchObject({ status: 'SUCCEEDED', counts: { targets: 1000, succeeded: 1000, failed: 0 } });
    const manifest = manifestOf(run);
    expect(manifest.results).toHaveLength(1000);
    expect(manifest.results.every((r) => r.status === 'succeeded' && r.imageId?.startsWith('ami-'))).toBe(true);
    expect(aws.objects.has(`${RUNS_BUCKET}/runs/${NAME}/manifest.json`)).toBe(true);
    // The limits were held (the runner fails a run past them); the largest payload, measured, stays under.
    const largest = Math.max(...run.executions.flatMap((e) => e.events.flatMap((ev) => [payloadBytes(ev.state?.input ?? null), payloadBytes(ev.state?.output ?? null)])));
    expect(largest).toBeLessThanOrEqual(PAYLOAD_LIMIT_BYTES);
    expect(payloadBytes(run.output ?? null)).toBeLessThan(4_000);
  }, 600_000);

  it('runs 1,000 targets that all fail to FAILED, its cause within 32,768 characters and the manifest still written', async () => {
    const { input, alias } = largestInput(aws.addSourceImage('eu-west-1'));
    addKeys(alias);
    for (const account of ACCOUNTS) for (const region of REGIONS) aws.failingCopies.add(`${account}/${region}`);

    const run = await runDefinition(input, pipelineHandlers(), { executionName: NAME });

    expect(run.error?.name).toBe('RunFailedError');
    expect(run.error?.cause.length).toBeLessThanOrEqual(CAUSE_MAX_CHARS);
    const summary = summaryOf(run);
    expect(summary).toMatchObject({ status: 'FAILED', counts: { targets: 1000, succeeded: 0, failed: 1000 } });
    expect(summary.failed).toHaveLength(50);
    expect(summary.manifest?.uri).toBe(`s3://${RUNS_BUCKET}/runs/${NAME}/manifest.json`);
    const manifest = conforms(manifestSchema, JSON.parse(aws.objects.get(`${RUNS_BUCKET}/runs/${NAME}/manifest.json`) ?? '{}'), 'the manifest in S3');
    expect(manifest.results).toHaveLength(1000);
    expect(manifest.results.every((r) => r.status === 'failed' && r.error?.name === 'ImageCopyFailedError')).toBe(true);
    expect(manifest.sourceShare?.revoked).toBe(true);
  }, 600_000);

  it('cleans up after a stopped 1,000-target run with the janitor, every payload within 262,144 bytes and the event small', async () => {
    const { input, alias } = largestInput(aws.addSourceImage('eu-west-1'));
    addKeys(alias);
    // Stopped as StopExecution stops it, once its Map Run has started: no Catch, no cleanup state, no event.
    const controller = new AbortController();
    const stopped = await runDefinition(input, pipelineHandlers(), {
      executionName: NAME,
      signal: controller.signal,
      settleMs: 1_000,
      onEvent: (e) => {
        if (e.type === 'StateEntered' && e.state?.name === 'PreflightTarget') controller.abort();
      },
    });
    expect(stopped.aborted).toBe(true);
    const arn = localExecutionArn(NAME);
    aws.executions.set(arn, 'ABORTED');
    aws.executionDetails.set(arn, { stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: NAME });
    aws.histories.set(arn, historyOf(stopped.executions[0]?.events ?? []));
    const events = aws.events.length;

    const janitor = await runDefinition({ execution: { arn } }, pipelineHandlers(), {
      definition: loadDefinition(new URL('../../statemachine/janitor.asl.yml', import.meta.url)),
      executionName: 'janitor-largest',
      stateMachine: { id: 'JanitorStateMachine', name: 'encrypted-ami-pipeline-janitor-local' },
    });

    // The runner fails an execution past a limit: none was passed, by the janitor or any of its 1,000 children.
    expect(janitor.error).toBeUndefined();
    expect(janitor.executions.filter((e) => e.mapState === 'CleanUpTargets')).toHaveLength(1000);
    const largest = Math.max(...janitor.executions.flatMap((e) => e.events.flatMap((ev) => [payloadBytes(ev.state?.input ?? null), payloadBytes(ev.state?.output ?? null)])));
    expect(largest).toBeLessThanOrEqual(PAYLOAD_LIMIT_BYTES);
    // The completion event stays far below EventBridge's 256 KB entry: counts, not a line per target.
    expect(aws.events).toHaveLength(events + 1);
    const detail = eventSummaries(aws.events).at(-1);
    expect(detail).toMatchObject({ status: 'ABORTED', cleanup: { targets: 1000, cleanedUp: 1000, notCleanedUp: 0, failed: [] } });
    expect(payloadBytes(aws.events.at(-1)?.Detail ?? '')).toBeLessThan(32_000);
  }, 600_000);
});
