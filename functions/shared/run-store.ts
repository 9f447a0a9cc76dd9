/**
 * The runs bucket in the builder account (serverless.yml RunsBucket; its name in RUNS_BUCKET): each run keeps
 * its targets (the Distributed Map's ItemReader reads them), the Map Run's results (ResultWriter writes them) and
 * its manifest under `runs/<execution name>/`. The files outlive the 90 days of execution history.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { toPipelineError } from './errors';
import { resultWriterManifestSchema, type ChildExecutionResult } from './manifest';
import { parsePayload, targetPairSchema, type RunFiles, type TargetPair } from './plan';

export const RUNS_BUCKET_ENV = 'RUNS_BUCKET';

/** Where a run's files go. Execution names are at most 80 characters of [A-Za-z0-9-_], all valid in S3 keys. */
export function runFiles(bucket: string, executionName: string): RunFiles {
  const prefix = `runs/${executionName}`;
  return {
    bucket,
    prefix,
    targetsKey: `${prefix}/targets.json`,
    resultsPrefix: `${prefix}/results`,
    manifestKey: `${prefix}/manifest.json`,
  };
}

/** The bucket this deployment keeps its runs in (a deployment setting, not an input). */
export function runsBucket(env: NodeJS.ProcessEnv = process.env): string {
  const bucket = env[RUNS_BUCKET_ENV];
  if (!bucket) throw new Error(`${RUNS_BUCKET_ENV} is not set: the function needs the runs bucket's name (serverless.yml sets it)`);
  return bucket;
}

export const s3Uri = (bucket: string, key: string) => `s3://${bucket}/${key}`;

export interface RunStore {
  putJson(bucket: string, key: string, value: unknown): Promise<void>;
  getJson(bucket: string, key: string): Promise<unknown>;
}

/** JSON files in S3 through the builder account's own client; AWS errors become pipeline errors (throttling retryable). */
export function s3RunStore(s3: () => S3Client): RunStore {
  return {
    async putJson(bucket, key, value) {
      try {
        await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value), ContentType: 'application/json' }));
      } catch (error) {
        throw toPipelineError(error, `PutObject ${s3Uri(bucket, key)}`, 'Check that the runs bucket exists and the function may write to it.');
      }
    },
    async getJson(bucket, key) {
      try {
        const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const text = (await out.Body?.transformToString('utf-8')) ?? '';
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw toPipelineError(error, `GetObject ${s3Uri(bucket, key)}`, 'Check that the runs bucket exists and the function may read it.');
      }
    },
  };
}

/** The run's targets, as ResolveSource wrote them for the Distributed Map's ItemReader. */
export async function readTargets(files: Pick<RunFiles, 'bucket' | 'targetsKey'>, store: RunStore): Promise<TargetPair[]> {
  return parsePayload(z.array(targetPairSchema), await store.getJson(files.bucket, files.targetsKey), s3Uri(files.bucket, files.targetsKey));
}

/**
 * A Map Run's results as ResultWriter wrote them: its manifest.json, then every SUCCEEDED / FAILED / PENDING file
 * it lists (one entry per child execution).
 */
export async function readMapRunResults(
  mapRun: { MapRunArn?: string; ResultWriterDetails: { Bucket: string; Key: string } },
  store: RunStore,
): Promise<{ children: ChildExecutionResult[]; mapRunArn: string | null }> {
  const { Bucket, Key } = mapRun.ResultWriterDetails;
  const written = parsePayload(resultWriterManifestSchema, await store.getJson(Bucket, Key), s3Uri(Bucket, Key));
  const children: ChildExecutionResult[] = [];
  for (const file of [...(written.ResultFiles.SUCCEEDED ?? []), ...(written.ResultFiles.FAILED ?? []), ...(written.ResultFiles.PENDING ?? [])]) {
    const entries = await store.getJson(written.DestinationBucket ?? Bucket, file.Key);
    if (Array.isArray(entries)) children.push(...(entries as ChildExecutionResult[]));
  }
  return { children, mapRunArn: mapRun.MapRunArn ?? written.MapRunArn ?? null };
}
