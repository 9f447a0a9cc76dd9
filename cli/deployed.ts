/**
 * The deployed pipeline, from the Step Functions side: find the state machine (by ARN or from the
 * stack's StateMachineArn output), start an execution, and follow it through DescribeExecution and
 * GetExecutionHistory until it is no longer running.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  paginateListExecutions,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import type * as z from 'zod';
import { looksLikeRunSummary, manifestSchema, runSummarySchema, schemaIssues, type Manifest, type RunSummary } from '../functions/shared/manifest-schema';
import { parseJson } from '../functions/shared/json';
import { RUN_FAILED_ERROR, runFailureSummary } from '../functions/shared/run-failure';
import { CliError } from './errors';
import type { StateEvent } from './progress';

export interface AwsOptions {
  region?: string;
  endpointUrl?: string;
}

/** The region in a Step Functions ARN (arn:aws:states:REGION:...). */
export function regionOfArn(arn: string): string | undefined {
  return /^arn:[^:]+:states:([a-z0-9-]+):/.exec(arn)?.[1];
}

function clientConfig(options: AwsOptions): { region?: string; endpoint?: string } {
  return {
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
  };
}

export function sfnClient(options: AwsOptions): SFNClient {
  return new SFNClient(clientConfig(options));
}

/** Reads a run's manifest from the runs bucket (where the summary says it is). */
export type ManifestReader = (bucket: string, key: string) => Promise<unknown>;

export function s3ManifestReader(options: AwsOptions): ManifestReader {
  return async (bucket, key) => {
    const s3 = new S3Client(clientConfig(options));
    try {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return JSON.parse((await out.Body?.transformToString('utf-8')) ?? 'null') as unknown;
    } finally {
      s3.destroy();
    }
  };
}

/** Redrive a failed, stopped or timed-out execution (RedriveExecution): it goes on from where it stopped. */
export async function redriveExecution(sfn: SFNClient, executionArn: string): Promise<void> {
  try {
    await sfn.send(new RedriveExecutionCommand({ executionArn }));
  } catch (error) {
    const { name, message } = error as Error;
    if (name === 'ExecutionNotRedrivable') {
      // RedriveExecution takes a FAILED, TIMED_OUT or ABORTED Standard execution within 14 days of its stop.
      const next = /RUNNING/.test(message)
        ? `it is still running: follow it with ami-pipeline status ${executionArn} --follow`
        : 'start a new run with the same input instead (ami-pipeline run --input FILE): it finds and reuses every copy and grant already made';
      throw new CliError(`cannot redrive ${executionArn}: ${name}: ${message}; ${next}`, 1);
    }
    if (name === 'ExecutionDoesNotExist') throw new CliError(`cannot redrive ${executionArn}: ${name}: ${message}`, 1);
    throw error;
  }
}

export async function stateMachineArnFromStack(stackName: string, options: AwsOptions): Promise<string> {
  const cfn = new CloudFormationClient(clientConfig(options));
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const arn = Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'StateMachineArn')?.OutputValue;
    if (!arn) throw new CliError(`stack ${stackName} has no output StateMachineArn: is it this pipeline's stack? Pass --state-machine-arn instead`, 1);
    return arn;
  } catch (error) {
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) {
      throw new CliError(
        `stack ${stackName} does not exist${options.region ? ` in ${options.region}` : ''}: deploy it (npx serverless deploy), or pass --stack NAME, --region or --state-machine-arn`,
        1,
      );
    }
    throw error;
  } finally {
    cfn.destroy();
  }
}

export async function startExecution(sfn: SFNClient, stateMachineArn: string, input: unknown): Promise<string> {
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input) }));
  if (!executionArn) throw new Error('StartExecution returned no executionArn');
  return executionArn;
}

/** A history event as the tracker reads it; undefined for events that are not a state entered or exited. */
export function toStateEvent(event: HistoryEvent): StateEvent | undefined {
  const at = event.timestamp ? new Date(event.timestamp).getTime() : undefined;
  const entered = event.stateEnteredEventDetails;
  if (entered?.name) return { kind: 'entered', stateName: entered.name, input: parseJson(entered.input), ...(at ? { at } : {}) };
  const exited = event.stateExitedEventDetails;
  if (exited?.name) return { kind: 'exited', stateName: exited.name, output: parseJson(exited.output), ...(at ? { at } : {}) };
  return undefined;
}

/**
 * Reads an execution's history incrementally. Each poll restarts from the page it last ended on (a page
 * can grow while the execution runs) and skips the events it has seen, by their increasing ids.
 */
export class HistoryReader {
  private pageToken: string | undefined;
  private lastId = 0;

  constructor(private readonly sfn: SFNClient, private readonly executionArn: string) {}

  async next(): Promise<HistoryEvent[]> {
    const fresh: HistoryEvent[] = [];
    let token = this.pageToken;
    for (;;) {
      let page;
      try {
        page = await this.sfn.send(
          new GetExecutionHistoryCommand({ executionArn: this.executionArn, reverseOrder: false, maxResults: 1000, ...(token ? { nextToken: token } : {}) }),
        );
      } catch (error) {
        // Tokens expire after a day: start over, the ids skip what was seen.
        if ((error as Error).name !== 'InvalidToken' || token === undefined) throw error;
        this.pageToken = token = undefined;
        continue;
      }
      for (const event of page.events ?? []) {
        if ((event.id ?? 0) > this.lastId) {
          fresh.push(event);
          this.lastId = event.id ?? this.lastId;
        }
      }
      if (!page.nextToken) break;
      this.pageToken = page.nextToken;
      token = page.nextToken;
    }
    return fresh;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The Map Run a Distributed Map started, from its MapRunStarted event. */
export function mapRunArn(event: HistoryEvent): string | undefined {
  return event.mapRunStartedEventDetails?.mapRunArn;
}

/** Child executions' histories read per poll at most (the others are read on the next polls). */
export const CHILD_READS_PER_POLL = 50;

const ENDED = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

/**
 * One run, polled: its description and the state events since the last poll, its targets' child executions'
 * included (listed from the Map Run; each is read until it ends, at most CHILD_READS_PER_POLL a poll).
 */
export class ExecutionWatcher {
  private readonly history: HistoryReader;
  private readonly children = new Map<string, { reader: HistoryReader; ended: boolean }>();
  private readonly mapRuns = new Set<string>();
  private turn = 0;

  constructor(private readonly sfn: SFNClient, readonly executionArn: string) {
    this.history = new HistoryReader(sfn, executionArn);
  }

  async poll(): Promise<{ execution: DescribeExecutionCommandOutput; events: StateEvent[] }> {
    const execution = await this.sfn.send(new DescribeExecutionCommand({ executionArn: this.executionArn }));
    // Read the history after the description: once that says finished, this read holds every event.
    const raw = await this.history.next();
    for (const event of raw) {
      const arn = mapRunArn(event);
      if (arn) this.mapRuns.add(arn);
    }
    for (const arn of this.mapRuns) {
      for await (const page of paginateListExecutions({ client: this.sfn }, { mapRunArn: arn, maxResults: 1000 })) {
        for (const child of page.executions ?? []) {
          if (child.executionArn && !this.children.has(child.executionArn)) this.children.set(child.executionArn, { reader: new HistoryReader(this.sfn, child.executionArn), ended: false });
        }
      }
    }
    const open = [...this.children.values()].filter((c) => !c.ended);
    const start = open.length > 0 ? this.turn % open.length : 0;
    const batch = [...open.slice(start), ...open.slice(0, start)].slice(0, CHILD_READS_PER_POLL);
    this.turn += batch.length;
    for (const child of batch) {
      const events = await child.reader.next();
      if (events.some((e) => ENDED.has(e.type ?? ''))) child.ended = true;
      raw.push(...events);
    }
    const events = raw.map(toStateEvent).filter((e): e is StateEvent => e !== undefined);
    return { execution, events };
  }

  /** Poll every `pollMs` until the execution is no longer RUNNING; resolves to its last description. */
  async follow(pollMs: number, onEvents: (events: StateEvent[]) => void): Promise<DescribeExecutionCommandOutput> {
    for (;;) {
      const { execution, events } = await this.poll();
      onEvents(events);
      if (execution.status !== 'RUNNING') return execution;
      await sleep(pollMs);
    }
  }
}

export interface Outcome {
  status: string;
  executionName?: string;
  executionArn?: string;
  manifest?: Manifest;
  error?: { name: string; cause: string };
  /** The run succeeded doing nothing (the source did not carry the opt-in tag). */
  skipped?: string;
  /** A local run stopped by SIGINT or SIGTERM: the exit code after its cleanup (128 + the signal: 130, 143). */
  interrupted?: number;
}

/**
 * What a finished execution produced: its manifest (read from the runs bucket where the run's summary, its output or
 * the cause of RunFailedError, says it is), or its error.
 */
export async function outcomeOfExecution(execution: DescribeExecutionCommandOutput, readManifest: ManifestReader): Promise<Outcome> {
  const base = {
    status: execution.status ?? 'UNKNOWN',
    ...(execution.name ? { executionName: execution.name } : {}),
    ...(execution.executionArn ? { executionArn: execution.executionArn } : {}),
  };
  const what = `execution ${execution.name ?? execution.executionArn ?? ''}`;
  if (execution.status === 'SUCCEEDED') {
    const output = parseJson(execution.output);
    if (looksLikeRunSummary(output)) return { ...base, manifest: await manifestOf(stored(runSummarySchema, output, `the output of ${what}`, SUMMARY_FILE), readManifest) };
    const plan = output as { skipped?: boolean; skipReason?: string } | undefined;
    if (plan?.skipped) return { ...base, skipped: plan.skipReason ?? 'the source was skipped' };
    return { ...base, error: { name: 'UnexpectedOutput', cause: `the execution succeeded without a manifest: ${execution.output ?? '(no output)'}` } };
  }
  if (execution.error === RUN_FAILED_ERROR) {
    // FailRun's Lambda error: the summary is its errorMessage.
    const summary = runFailureSummary(execution.cause);
    if (looksLikeRunSummary(summary)) return { ...base, manifest: await manifestOf(stored(runSummarySchema, summary, `the RunFailedError cause of ${what}`, SUMMARY_FILE), readManifest) };
  }
  return { ...base, error: { name: execution.error ?? execution.status ?? 'Error', cause: execution.cause ?? `the execution ended ${execution.status}` } };
}

const SUMMARY_FILE = 'schema/run-summary.schema.json';
const MANIFEST_FILE = 'schema/manifest.schema.json';

/** A run's summary or manifest read back from AWS, checked against its schema; a mismatch names the field. */
function stored<S extends z.ZodType>(schema: S, value: unknown, what: string, file: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new CliError(
    `${what} does not match ${file}: ${schemaIssues(parsed.error).join('; ')}`,
    1,
    'it was written by another version of the pipeline, or edited: use the ami-pipeline of the deployed version, or read the JSON itself',
  );
}

/** The manifest the summary points at; the summary alone (without every target's line) when it cannot be read. */
export async function manifestOf(summary: RunSummary, readManifest: ManifestReader): Promise<Manifest> {
  if (!summary.manifest) return { ...summary, results: [] };
  let manifest: unknown;
  try {
    manifest = await readManifest(summary.manifest.bucket, summary.manifest.key);
  } catch (error) {
    process.stderr.write(`could not read the manifest ${summary.manifest.uri}: ${(error as Error).message}\n`);
    return { ...summary, results: [] };
  }
  return storedManifest(manifest, `the manifest ${summary.manifest.uri}`);
}

/** A manifest read back (from S3, or a local run's), checked against schema/manifest.schema.json. */
export function storedManifest(value: unknown, what: string): Manifest {
  return stored(manifestSchema, value, what, MANIFEST_FILE);
}
