/**
 * States: RecordManifest. Serverless function: recordManifest.
 * RecordManifest: runs once after the Distributed Map, in the builder account. Reads the Map Run's results
 * (ResultWriter's manifest.json and its SUCCEEDED / FAILED / PENDING files: one entry per child execution), writes
 * the run's full manifest (every target's line) as JSON beside them, and returns the run's summary: counts, the
 * first failed targets and where the manifest is. The summary's size does not grow past MAX_FAILED_LINES targets,
 * so it fits a state's 256 KB and a failure cause's 32,768 characters whatever the number of targets.
 * Takes { executionName, source, sourceShare, organization, files, targetCount, mapRun }; returns the RunSummary.
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
import { ouExpansionSchema, sourceSchema, sourceShareSchema, type RunSummary } from './shared/manifest-schema';

export const recordManifestEventSchema = z.object({
  executionName: z.string().min(1),
  source: sourceSchema.nullable(),
  sourceShare: sourceShareSchema,
  /** What each organizationalUnitId entry expanded to (ResolveSource's plan); absent or empty without OU entries. */
  organization: z.array(ouExpansionSchema).optional(),
  targetCount: z.number().int(),
  files: z.object({ bucket: z.string().min(1), manifestKey: z.string().min(1) }).loose(),
  mapRun: z.object({
    MapRunArn: z.string().optional(),
    ResultWriterDetails: z.object({ Bucket: z.string().min(1), Key: z.string().min(1) }),
  }).loose(),
});
export type RecordManifestEvent = z.infer<typeof recordManifestEventSchema>;

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
  const { manifest, summary } = buildManifest({
    executionName: event.executionName,
    source: event.source,
    sourceShare: event.sourceShare,
    organization: event.organization ?? [],
    targetCount: event.targetCount,
    mapRunArn,
    location,
    children,
  });
  await deps.store.putJson(location.bucket, location.key, manifest);
  logger.info('Manifest recorded', { status: summary.status, ...summary.counts, manifest: location.uri });
  return summary;
}

export const makeHandler = (deps: RecordManifestDeps = defaultDeps) =>
  lambdaHandler(
    'RecordManifest',
    (event) => ({ executionName: (event as Partial<RecordManifestEvent> | null)?.executionName }),
    (event) => recordManifest(parsePayload(recordManifestEventSchema, event, 'event'), deps),
  );

export const handler = makeHandler();
