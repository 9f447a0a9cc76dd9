/**
 * States: RecordManifest, FailRun. Serverless function: recordManifest.
 * RecordManifest: runs once after the Distributed Map, in the builder account. Reads the Map Run's results
 * (ResultWriter's manifest.json and its SUCCEEDED / FAILED / PENDING files: one entry per child execution), writes
 * the run's full manifest (every target's line) as JSON beside them, and returns the run's summary: counts, the
 * first failed targets and where the manifest is. The summary's size does not grow past MAX_FAILED_LINES targets,
 * so it fits a state's 256 KB and a failure cause's 32,768 characters whatever the number of targets. On a redrive's
 * retry (`files.retry`), the lines of the targets that did not run again are kept from the run's manifest.
 * Takes { executionName, source, sourceShare, organization, files, targetCount, mapRun }; returns the RunSummary.
 * FailRun (`action: "end"`): the run did not succeed. On the attempt that found it so (`redriveCount` is `failedAt`),
 * throws RunFailedError with the summary as its message; redriven, returns the RetryPlan (functions/shared/run-failure.ts).
 * Throws InvalidInputError, AccessDeniedError, AwsRequestFailedError (terminal) or the retryable throttling/5xx errors.
 */
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { clientFactory } from './shared/client-factory';
import { lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload } from './shared/plan';
import { readMapRunResults, s3RunStore, s3Uri, type RunStore } from './shared/run-store';
import { buildManifest } from './shared/manifest';
import { ouExpansionSchema, runSummarySchema, sourceSchema, sourceShareSchema, storedResults, type RunSummary } from './shared/manifest-schema';
import { RunFailedError } from './shared/errors';
import { planRetry, type RetryPlan } from './shared/run-failure';

export const recordManifestEventSchema = z.object({
  executionName: z.string().min(1),
  source: sourceSchema.nullable(),
  sourceShare: sourceShareSchema,
  /** What each organizationalUnitId entry expanded to (ResolveSource's plan); absent or empty without OU entries. */
  organization: z.array(ouExpansionSchema).optional(),
  targetCount: z.number().int(),
  files: z.object({ bucket: z.string().min(1), manifestKey: z.string().min(1), retry: z.number().int().optional() }).loose(),
  mapRun: z.object({
    MapRunArn: z.string().optional(),
    ResultWriterDetails: z.object({ Bucket: z.string().min(1), Key: z.string().min(1) }),
  }).loose(),
});
export type RecordManifestEvent = z.infer<typeof recordManifestEventSchema>;

const filesSchema = z.looseObject({
  bucket: z.string().min(1),
  prefix: z.string().min(1),
  targetsKey: z.string().min(1),
  resultsPrefix: z.string().min(1),
  manifestKey: z.string().min(1),
  retry: z.number().int().optional(),
});

export const failRunEventSchema = z.object({
  action: z.literal('end'),
  executionName: z.string().min(1),
  /** RecordManifest's result (or the Pass standing in for it). */
  summary: runSummarySchema,
  /** `$$.Execution.RedriveCount` when the run was found not to have succeeded, and now. */
  failedAt: z.number().int().min(0),
  redriveCount: z.number().int().min(0),
  files: filesSchema,
  shareAccountIds: z.array(z.string()),
  sourceShare: z.looseObject({ revoked: z.boolean() }),
});
export type FailRunEvent = z.infer<typeof failRunEventSchema>;

export interface RecordManifestDeps {
  store: RunStore;
}

const clients = clientFactory({ s3: S3Client });
export const defaultDeps: RecordManifestDeps = {
  store: s3RunStore(() => clients.builder().s3(process.env.AWS_REGION ?? 'us-east-1')),
};

export async function recordManifest(event: RecordManifestEvent, deps: RecordManifestDeps = defaultDeps): Promise<RunSummary> {
  const { children, mapRunArn } = await readMapRunResults(event.mapRun, deps.store);
  const location = { bucket: event.files.bucket, key: event.files.manifestKey, uri: s3Uri(event.files.bucket, event.files.manifestKey) };
  // A redrive's retry ran only the targets that had failed: the others keep their line of the run's manifest.
  const previous = event.files.retry === undefined ? undefined : await deps.store.getJson(location.bucket, location.key);
  const kept = storedResults(previous);
  const { manifest, summary } = buildManifest({
    executionName: event.executionName,
    source: event.source,
    sourceShare: event.sourceShare,
    organization: event.organization ?? [],
    targetCount: event.targetCount,
    mapRunArn,
    location,
    children,
    kept,
  });
  await deps.store.putJson(location.bucket, location.key, manifest);
  logger.info('Manifest recorded', { status: summary.status, ...summary.counts, manifest: location.uri });
  return summary;
}

/** FailRun: fail the run on the attempt that found it failed; plan the retry of what failed when it is redriven. */
export async function failRun(event: FailRunEvent, deps: RecordManifestDeps = defaultDeps): Promise<RetryPlan> {
  if (event.redriveCount <= event.failedAt) {
    logger.info('Run failed', { status: event.summary.status, ...event.summary.counts });
    throw new RunFailedError(JSON.stringify(event.summary));
  }
  const plan = await planRetry(event, deps.store);
  logger.info('Retry planned', { redriveCount: plan.redriveCount, targets: plan.targetCount, accounts: plan.shareAccountIds.length });
  return plan;
}

export const makeHandler = (deps: RecordManifestDeps = defaultDeps) =>
  lambdaHandler(
    'RecordManifest',
    (event) => ({ executionName: (event as Partial<RecordManifestEvent> | null)?.executionName }),
    (event): Promise<RunSummary | RetryPlan> =>
      (event as { action?: unknown } | null)?.action === 'end'
        ? failRun(parsePayload(failRunEventSchema, event, 'event'), deps)
        : recordManifest(parsePayload(recordManifestEventSchema, event, 'event'), deps),
  );

export const handler = makeHandler();
