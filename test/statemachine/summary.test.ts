/**
 * The Pass states that write the run's summary by hand, for a run that stopped before its manifest (ReportRunError
 * before the targets, ManifestNotRecorded when RecordManifest fails), write what schema/run-summary.schema.json
 * declares, and the completion event carries it. The real definition over the in-memory AWS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers } from '../../bench/handlers';
import { AccessDeniedError } from '../../functions/shared/errors';
import { runSummarySchema } from '../../functions/shared/manifest-schema';
import { runDefinition, type Json, type RunResult } from '../../local/asl';
import { ACCOUNT_A } from '../support/fixtures';
import { checkEventsAndRestore, completionDetails, conforms, summaryOf } from '../support/run-output';

const REGION = 'eu-west-1';
let aws: FakeAws;

const input = (imageId: string): Json => ({ source: { imageId, region: REGION }, targets: [{ accountId: ACCOUNT_A, regions: [REGION], kmsKey: 'alias/ami-encryption' }] });

/** What a state put at `$.manifest`: the summary it wrote. */
function writtenBy(run: RunResult, state: string): unknown {
  const exited = run.events.filter((e) => e.type === 'StateExited' && e.state?.name === state);
  expect(exited).toHaveLength(1);
  return (exited[0]?.state?.output as { manifest?: unknown }).manifest;
}

beforeEach(() => {
  aws = new FakeAws();
  aws.addKey(ACCOUNT_A, REGION);
});
afterEach(() => checkEventsAndRestore(aws));

describe('a summary written by a Pass state', () => {
  it('ReportRunError: a run refused before its targets says why, and its failure event (no topic) carries that summary', async () => {
    const run = await runDefinition(input('ami-0123456789abcdef0'), pipelineHandlers(), { executionName: 'refused' });
    expect(run.error?.name).toBe('SourceImageNotFoundError');
    const summary = conforms(runSummarySchema, writtenBy(run, 'ReportRunError'), "ReportRunError's summary");
    expect(summary).toMatchObject({ status: 'FAILED', executionName: 'refused', counts: null, manifest: null, error: { name: 'SourceImageNotFoundError' } });
    expect(completionDetails(aws.events)).toEqual([summary]);
    expect(aws.events.map((e) => e.DetailType)).toEqual(['AMI Distribution Failed']);
    // NotifyRunError has no topic: only the event goes out.
    expect(aws.notifications).toEqual([]);
  });

  it('ManifestNotRecorded: a run whose results cannot be read fails with a summary naming the error and the Map Run', async () => {
    const handlers = pipelineHandlers();
    // RecordManifest fails; FailRun (the same function, action "end") then fails the run.
    const { recordManifest } = handlers;
    handlers.recordManifest = (event) =>
      (event as { action?: string }).action === 'end' && recordManifest
        ? recordManifest(event)
        : Promise.reject(new AccessDeniedError('Reading the Map Run results failed: AccessDenied. The pipeline role needs s3:GetObject on the runs bucket.'));
    const run = await runDefinition(input(aws.addSourceImage(REGION)), handlers, { executionName: 'unrecorded' });
    const summary = conforms(runSummarySchema, writtenBy(run, 'ManifestNotRecorded'), "ManifestNotRecorded's summary");
    expect(summary).toMatchObject({ status: 'FAILED', counts: null, manifest: null, sourceShare: { revoked: true }, error: { name: 'AccessDeniedError' } });
    expect(summary.mapRunArn).toMatch(/:mapRun:/);
    expect(summaryOf(run)).toEqual(summary);
    expect(completionDetails(aws.events)).toEqual([summary]);
  });
});
