/**
 * The local runner: the real state machine definition, each Task invoking the function's esbuild bundle
 * (built with serverless.yml's esbuild settings) in this process, as Lambda would (event + context).
 * AWS calls go wherever the SDK's standard settings point (AWS_ENDPOINT_URL, or `endpointUrl` here);
 * the functions are not changed for it.
 */
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { pathToFileURL } from 'node:url';
import { buildBundles, temporaryBundleDir, type Bundle, type TemporaryDir } from './bundle';
import { runDefinition, type EventLog, type ExecutionRecord, type Json, type TaskHandler } from './asl';
import { localStepFunctionsEndpoint, recordEnd, recordStart } from './executions';
import type { Manifest } from '../functions/shared/manifest-schema';

export interface LocalRunOptions {
  /** AWS-compatible endpoint for every service; default: the SDK's own settings (AWS_ENDPOINT_URL, ...). */
  endpointUrl?: string;
  /** Region the pipeline "runs in" (where the targets document is read); default AWS_REGION or us-east-1. */
  region?: string;
  executionName?: string;
  /** Milliseconds each Wait state lasts locally (default 0). */
  waitMs?: number;
  /** Powertools log level of the functions (default SILENT; INFO shows their JSON lines). */
  logLevel?: string;
  onEvent?: (event: EventLog) => void;
  /** Bundles already built (the runner builds them otherwise). */
  bundles?: Bundle[];
  /** Stops the run as StopExecution would (the CLI's Ctrl-C): status ABORTED, no Catch or cleanup state runs. */
  signal?: AbortSignal;
  /** The runs bucket (serverless.yml's RunsBucket); created on the endpoint when missing. Default LOCAL_RUNS_BUCKET. */
  runsBucket?: string;
}

export const LOCAL_RUNS_BUCKET = 'ami-pipeline-runs-local';

/** The runs bucket the deployment would have created (an existing one is kept). */
export async function ensureRunsBucket(bucket: string, region: string): Promise<void> {
  const s3 = new S3Client({ region });
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
  } catch (error) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((error as Error).name)) throw error;
  } finally {
    s3.destroy();
  }
}

export interface LocalRunResult {
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  executionName: string;
  manifest?: Manifest;
  error?: { name: string; cause: string };
  events: EventLog[];
  /** The run's execution and each target's child execution, with their own events and outputs. */
  executions: ExecutionRecord[];
}

let runs = 0;
/** Local runs going on in this process, and the environment they found (see runLocal). */
let active = 0;
let saved: { endpoint?: string | undefined; sfn?: string | undefined; region?: string | undefined; level?: string | undefined; bucket?: string | undefined } | undefined;

/** Import each bundle afresh (so its clients see this run's endpoint) and wrap it as Lambda would call it. */
async function loadHandlers(bundles: Bundle[], executionName: string, region: string): Promise<Record<string, TaskHandler>> {
  runs += 1;
  const handlers: Record<string, TaskHandler> = {};
  for (const bundle of bundles) {
    const mod = (await import(`${pathToFileURL(bundle.file).href}?run=${runs}`)) as Record<string, unknown>;
    const handler = mod[bundle.exportName] as ((event: unknown, context: object) => Promise<unknown>) | undefined;
    if (typeof handler !== 'function') throw new Error(`${bundle.file} exports no ${bundle.exportName}`);
    const functionName = `encrypted-ami-pipeline-local-${bundle.name}`;
    handlers[bundle.name] = (event) =>
      handler(event, {
        functionName,
        functionVersion: '$LATEST',
        invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
        memoryLimitInMB: '256',
        awsRequestId: randomUUID(),
        logGroupName: `/aws/lambda/${functionName}`,
        logStreamName: executionName,
        callbackWaitsForEmptyEventLoop: false,
        getRemainingTimeInMillis: () => 90_000,
      });
  }
  return handlers;
}

export async function runLocal(input: unknown, options: LocalRunOptions = {}): Promise<LocalRunResult> {
  const executionName = options.executionName ?? `local-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  // Runs at once in one process share its environment: the first saves it, the last one to end puts it back.
  active += 1;
  saved ??= {
    endpoint: process.env.AWS_ENDPOINT_URL,
    sfn: process.env.AWS_ENDPOINT_URL_SFN,
    region: process.env.AWS_REGION,
    level: process.env.POWERTOOLS_LOG_LEVEL,
    bucket: process.env.RUNS_BUCKET,
  };
  if (options.endpointUrl) process.env.AWS_ENDPOINT_URL = options.endpointUrl;
  // The functions ask Step Functions whether a run is still running (the share ledger): local runs are answered here.
  process.env.AWS_ENDPOINT_URL_SFN = await localStepFunctionsEndpoint();
  recordStart(executionName);
  let ended: 'SUCCEEDED' | 'FAILED' | 'ABORTED' = 'FAILED';
  process.env.AWS_REGION = region;
  process.env.POWERTOOLS_LOG_LEVEL = options.logLevel ?? 'SILENT';
  process.env.RUNS_BUCKET = options.runsBucket ?? LOCAL_RUNS_BUCKET;
  // Bundles this run builds for itself go when it ends (and on every other way out: see temporaryBundleDir).
  let own: TemporaryDir | undefined;
  try {
    // An endpoint that cannot create it (or cannot be reached) fails the run at ResolveSource, as a deployed run would.
    await ensureRunsBucket(process.env.RUNS_BUCKET, region).catch(() => undefined);
    if (!options.bundles) own = temporaryBundleDir();
    const bundles = options.bundles ?? (await buildBundles(own?.path));
    const handlers = await loadHandlers(bundles, executionName, region);
    const run = await runDefinition(input as Json, handlers, {
      executionName,
      waitMs: options.waitMs ?? 0,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const manifest = run.manifest as Manifest | undefined;
    ended = run.aborted ? 'ABORTED' : run.error ? 'FAILED' : 'SUCCEEDED';
    return {
      status: ended,
      executionName,
      ...(manifest ? { manifest } : {}),
      ...(run.error ? { error: run.error } : {}),
      events: run.events,
      executions: run.executions,
    };
  } finally {
    recordEnd(executionName, ended);
    own?.remove();
    active -= 1;
    if (active === 0 && saved) {
      restore('AWS_ENDPOINT_URL', saved.endpoint);
      restore('AWS_ENDPOINT_URL_SFN', saved.sfn);
      restore('AWS_REGION', saved.region);
      restore('POWERTOOLS_LOG_LEVEL', saved.level);
      restore('RUNS_BUCKET', saved.bucket);
      saved = undefined;
    }
  }
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
