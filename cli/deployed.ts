/**
 * The deployed pipeline, from the Step Functions side: find the state machine (by ARN or from the
 * stack's StateMachineArn output), start an execution, and follow it through DescribeExecution and
 * GetExecutionHistory until it is no longer running.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { expandManifest, isRunSummary, type Manifest } from '../local/manifest';
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

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
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

/** The batch execution a RunBatch task started, from its TaskSubmitted (or TaskSucceeded) event. */
export function childExecutionArn(event: HistoryEvent): string | undefined {
  const details = event.taskSubmittedEventDetails ?? event.taskSucceededEventDetails;
  if (details?.resourceType !== 'states') return undefined;
  const output = parseJson(details.output) as { ExecutionArn?: string } | undefined;
  return output?.ExecutionArn;
}

const ENDED = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

/**
 * One run, polled: its description and the state events since the last poll, the batch executions' included
 * (found as the run starts them; each is read until it ends).
 */
export class ExecutionWatcher {
  private readonly history: HistoryReader;
  private readonly children = new Map<string, { reader: HistoryReader; ended: boolean }>();

  constructor(private readonly sfn: SFNClient, readonly executionArn: string) {
    this.history = new HistoryReader(sfn, executionArn);
  }

  async poll(): Promise<{ execution: DescribeExecutionCommandOutput; events: StateEvent[] }> {
    const execution = await this.sfn.send(new DescribeExecutionCommand({ executionArn: this.executionArn }));
    // Read the history after the description: once that says finished, this read holds every event.
    const raw = await this.history.next();
    for (const event of raw) {
      const arn = childExecutionArn(event);
      if (arn && !this.children.has(arn)) this.children.set(arn, { reader: new HistoryReader(this.sfn, arn), ended: false });
    }
    for (const child of this.children.values()) {
      if (child.ended) continue;
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
 * What a finished execution produced: its manifest (the run's summary from its output, or from the cause of
 * RunFailedError, with every target's line read from the batch executions), or its error.
 */
export async function outcomeOfExecution(sfn: SFNClient, execution: DescribeExecutionCommandOutput): Promise<Outcome> {
  const base = {
    status: execution.status ?? 'UNKNOWN',
    ...(execution.name ? { executionName: execution.name } : {}),
    ...(execution.executionArn ? { executionArn: execution.executionArn } : {}),
  };
  const batchOutput = async (executionArn: string) => parseJson((await sfn.send(new DescribeExecutionCommand({ executionArn }))).output);
  if (execution.status === 'SUCCEEDED') {
    const output = parseJson(execution.output);
    if (isRunSummary(output)) return { ...base, manifest: await expandManifest(output, batchOutput) };
    const plan = output as { skipped?: boolean; skipReason?: string } | undefined;
    if (plan?.skipped) return { ...base, skipped: plan.skipReason ?? 'the source was skipped' };
    return { ...base, error: { name: 'UnexpectedOutput', cause: `the execution succeeded without a manifest: ${execution.output ?? '(no output)'}` } };
  }
  if (execution.error === 'RunFailedError') {
    const summary = parseJson(execution.cause);
    if (isRunSummary(summary)) return { ...base, manifest: await expandManifest(summary, batchOutput) };
  }
  return { ...base, error: { name: execution.error ?? execution.status ?? 'Error', cause: execution.cause ?? `the execution ended ${execution.status}` } };
}
