/**
 * Runs the real state machine definition with aws-local-stepfunctions, each Task resolved to one of our
 * functions. Thrown errors are shaped as Lambda reports them to Step Functions (Error = errorType,
 * Cause = JSON with errorType and errorMessage), so Retry, Catch and the cause parsing behave as deployed.
 * Wait states and retry intervals are shortened; the loops themselves are unchanged. AWS's limits hold
 * (local/limits.ts): payload sizes, error and cause lengths, execution names, 25,000 history events.
 */
import './polyfill';
import { readFileSync } from 'node:fs';
import { StateMachine, type RunOptions as LibRunOptions, type StateMachineDefinition } from 'aws-local-stepfunctions';

/** The library's own names for a JSON value and for the local Task handlers. */
type LibJson = Parameters<StateMachine['run']>[0];
type LibHandlers = NonNullable<NonNullable<LibRunOptions['overrides']>['taskResourceLocalHandlers']>;
import { parse } from 'yaml';
import { historyCounter, historyShape } from './history';
import {
  LAMBDA_SYNC_PAYLOAD_BYTES,
  LIMITS,
  PAYLOAD_LIMIT_BYTES,
  checkPayload,
  executionNameProblem,
  fitFailure,
  installLimits,
  payloadBytes,
  type LimitContext,
} from './limits';
import { localExecutionArn } from './executions';
import { expandManifest, isRunSummary } from './manifest';

installLimits();

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Definition = { States: Record<string, Record<string, unknown>>; StartAt: string } & Record<string, unknown>;
export type TaskHandler = (event: unknown) => Promise<unknown>;
/** The part of aws-local-stepfunctions' event log the runner reads. */
export interface EventLog {
  type: string;
  timestamp?: number;
  state?: { name: string; type: string; input?: unknown; output?: unknown };
  index?: number;
  Error?: string;
  Cause?: unknown;
}

export const DEFINITION_PATH = new URL('../statemachine/pipeline.asl.yml', import.meta.url);
/** The state machines a definition may start as child executions (`StateMachineArn: { Ref: <id> }`), by serverless.yml id. */
export const CHILD_DEFINITIONS: Record<string, URL> = {
  DistributeStateMachine: new URL('../statemachine/distribute.asl.yml', import.meta.url),
};
const START_EXECUTION_SYNC = 'arn:aws:states:::states:startExecution.sync:2';

type States = Record<string, Record<string, unknown>>;

function nested(state: Record<string, unknown>): States[] {
  const processor = (state.ItemProcessor ?? state.Iterator) as { States: States } | undefined;
  const branches = (state.Branches as { States: States }[] | undefined) ?? [];
  return [...(processor ? [processor.States] : []), ...branches.map((b) => b.States)];
}

/** Every state of the definition, nested ones included. */
export function allStates(definition: Definition): [string, Record<string, unknown>][] {
  const out: [string, Record<string, unknown>][] = [];
  const walk = (states: States) => {
    for (const [name, state] of Object.entries(states)) {
      out.push([name, state]);
      for (const inner of nested(state)) walk(inner);
    }
  };
  walk(definition.States);
  return out;
}

function definitionState(definition: Definition, name: string): Record<string, unknown> | undefined {
  return allStates(definition).find(([n]) => n === name)?.[1];
}

export interface LoadedDefinition {
  definition: Definition;
  /** Lambda Task states, by state name: the serverless.yml function they invoke. */
  taskFunctions: Record<string, string>;
  /** StartExecution.sync Task states, by state name: the child definition they run. */
  childTasks: Record<string, LoadedDefinition & { id: string; arn: string }>;
}

/**
 * The definition as serverless.yml loads it: each `Fn::GetAtt: [function, Arn]` replaced by a Lambda ARN and
 * each `StateMachineArn: { Ref: <id> }` of a StartExecution.sync Task by a state machine ARN (its definition
 * loaded as well, to run as a child execution).
 */
export function loadDefinition(path: URL | string = DEFINITION_PATH): LoadedDefinition {
  const definition = parse(readFileSync(path, 'utf8')) as Definition;
  const taskFunctions: Record<string, string> = {};
  const childTasks: LoadedDefinition['childTasks'] = {};
  for (const [name, state] of allStates(definition)) {
    const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | string | undefined;
    if (state.Type !== 'Task') continue;
    if (typeof resource === 'object' && resource['Fn::GetAtt']) {
      const fn = resource['Fn::GetAtt'][0];
      taskFunctions[name] = fn;
      state.Resource = `arn:aws:lambda:us-east-1:123456789012:function:encrypted-ami-pipeline-local-${fn}`;
    } else if (resource === START_EXECUTION_SYNC) {
      const parameters = state.Parameters as { StateMachineArn?: { Ref?: string } };
      const id = parameters.StateMachineArn?.Ref ?? '';
      const file = CHILD_DEFINITIONS[id];
      if (!file) throw new Error(`state ${name} starts ${JSON.stringify(parameters.StateMachineArn)}, which is not a known state machine`);
      const arn = `arn:aws:states:us-east-1:123456789012:stateMachine:encrypted-ami-pipeline-local-${id}`;
      parameters.StateMachineArn = arn as never;
      childTasks[name] = { ...loadDefinition(file), id, arn };
    }
  }
  return { definition, taskFunctions, childTasks };
}

class LambdaError extends Error {}

function lambdaError(name: string, cause: string): LambdaError {
  const fitted = fitFailure(name, cause);
  const error = new LambdaError(fitted.cause);
  error.name = fitted.error;
  return error;
}

/**
 * Invoke a handler as Lambda would for Step Functions: JSON in, JSON out, errors as errorType + JSON cause (cut
 * to 256 and 32,768 characters). Lambda refuses a request or a response over 6 MB; Step Functions fails the task
 * with States.DataLimitExceeded when the result is over 262,144 bytes (a task failure: Retry and Catch apply).
 */
export function asLambda(handler: TaskHandler, resource = 'lambda'): (input: Json) => Promise<Json> {
  return async (input) => {
    const request = payloadBytes(input);
    if (request > LAMBDA_SYNC_PAYLOAD_BYTES) {
      throw lambdaError('Lambda.RequestTooLargeException', `Request must be smaller than ${LAMBDA_SYNC_PAYLOAD_BYTES} bytes for the InvokeFunction operation (${request} bytes)`);
    }
    let result: unknown;
    try {
      result = await handler(JSON.parse(JSON.stringify(input)));
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      throw lambdaError(e.name, JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] }));
    }
    const response = payloadBytes(result);
    if (response > LAMBDA_SYNC_PAYLOAD_BYTES) {
      const message = `Response payload size exceeded maximum allowed payload size (${LAMBDA_SYNC_PAYLOAD_BYTES} bytes): ${response} bytes.`;
      throw lambdaError('Function.ResponseSizeTooLarge', JSON.stringify({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: message }));
    }
    checkPayload(result, resource, 'task result', false);
    return JSON.parse(JSON.stringify(result ?? null)) as Json;
  };
}

/**
 * Read the manifest from the Report* state's output rather than from the failure's cause: aws-local-stepfunctions
 * 3.0.0 does not escape quotes nested inside strings in States.JsonToString (AWS does), so the cause it builds
 * can be invalid JSON when an error message quotes JSON.
 */
async function manifestFrom(run: Run, parent: ExecutionRecord): Promise<Json | undefined> {
  const exited = parent.events.filter((e) => e.type === 'StateExited' && /^Report(Succeeded|Partial|Failed)$/.test(e.state?.name ?? ''));
  const summary = (exited[exited.length - 1]?.state?.output as { manifest?: Json } | undefined)?.manifest;
  if (!isRunSummary(summary)) return summary;
  // The full manifest: each target's line from its batch execution's output, as the CLI reads it when deployed.
  const outputs = new Map(run.executions.map((e) => [e.arn, e.output]));
  return (await expandManifest(summary, async (arn) => outputs.get(arn))) as unknown as Json;
}

/** One execution of a local run: the parent, or a child it started. */
export interface ExecutionRecord {
  name: string;
  arn: string;
  /** serverless.yml id of its state machine (PipelineStateMachine for the parent). */
  stateMachine: string;
  /** This execution's own events. */
  events: EventLog[];
  output?: Json;
  error?: { name: string; cause: string };
}

export interface RunResult {
  output?: Json;
  /** The manifest (the Report* states' summary with each target's line from its batch), whether the run succeeded or failed. */
  manifest?: Json;
  error?: { name: string; cause: string };
  /** Every execution's events, children's included, in the order they happened. */
  events: EventLog[];
  /** The parent first, then each child execution in the order they started. */
  executions: ExecutionRecord[];
  /** True when `signal` stopped the run (as StopExecution would: no Catch, no cleanup state ran). */
  aborted?: boolean;
}

export interface RunOptions {
  /** Stops the run as StopExecution does: every execution ends at once, no new one starts. */
  signal?: AbortSignal;
  /** After a stop, how long to let the handlers already invoked finish (default 30,000 ms), so nothing they make is missed. */
  settleMs?: number;
  executionName?: string;
  /** Milliseconds every Wait state lasts (default 0). */
  waitMs?: number;
  /** Milliseconds before every retry (default 0). */
  retryMs?: number;
  /** Called with each event as it happens (children's too; `execution` names the one it belongs to). */
  onEvent?: (event: EventLog, execution: ExecutionRecord) => void;
  definition?: LoadedDefinition;
  /** Replace a Wait state's behaviour (a virtual clock): called with the state's name, definition and input; returns the input. */
  waitHandler?: (state: Record<string, unknown>, input: Json) => Promise<Json>;
}

class ChildExecutionFailed extends Error {}

interface Run {
  handlers: Record<string, TaskHandler>;
  options: RunOptions;
  all: EventLog[];
  executions: ExecutionRecord[];
  /** Handler invocations not yet settled. */
  inflight: Set<Promise<unknown>>;
}

function track<T>(run: Run, promise: Promise<T>): Promise<T> {
  run.inflight.add(promise);
  promise.then(
    () => run.inflight.delete(promise),
    () => run.inflight.delete(promise),
  );
  return promise;
}

async function execute(run: Run, loaded: LoadedDefinition, input: Json, record: ExecutionRecord): Promise<Json> {
  const { definition, taskFunctions, childTasks } = loaded;
  const local: LibHandlers = {};
  for (const [state, fn] of Object.entries(taskFunctions)) {
    const handler = run.handlers[fn];
    if (!handler) throw new Error(`no handler for function ${fn} (state ${state})`);
    const invoke = asLambda(handler, String(definitionState(definition, state)?.Resource ?? fn));
    local[state] = (event) => {
      // The state's input after Parameters: over the limit, the execution fails (not a task failure).
      checkPayload(event, state, 'task input after Parameters');
      return track(run, invoke(event as Json)) as Promise<LibJson>;
    };
  }
  for (const [state, child] of Object.entries(childTasks)) {
    local[state] = (async (event: unknown) => {
      checkPayload(event, state, 'task input after Parameters');
      const result = await startChild(run, child, event as { Name: string; Input: Json });
      // DescribeExecution's answer, the child's input and output included: the Task's result, held to the limit.
      checkPayload(result, 'states', 'task result', false);
      return result;
    }) as LibHandlers[string];
  }
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  let shaped: Definition = definition;
  if (run.options.waitHandler) {
    // Each Wait becomes a Task of the same name whose handler does the waiting (the state's transitions and
    // Next stay as they are; only how long it lasts changes).
    shaped = structuredClone(definition);
    for (const [name, state] of allStates(shaped)) {
      if (state.Type !== 'Wait') continue;
      const original = structuredClone(state);
      for (const key of ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath']) delete state[key];
      state.Type = 'Task';
      state.Resource = `arn:aws:lambda:us-east-1:123456789012:function:local-wait-${name}`;
      const waitHandler = run.options.waitHandler;
      local[name] = ((event: unknown) => waitHandler(original, event as Json)) as LibHandlers[string];
    }
  }
  for (const [name, state] of allStates(shaped)) {
    if (state.Type === 'Wait') waits[name] = run.options.waitMs ?? 0;
    if (state.Retry) retries[name] = run.options.retryMs ?? 0;
  }
  // The YAML is ASL; the library validates it on construction.
  const machine = new StateMachine(shaped as unknown as StateMachineDefinition, { validationOptions: { checkArn: false } });
  const limits: LimitContext = { execution: record.name, countEvent: historyCounter(historyShape(loaded)) };
  const runOptions: LibRunOptions = {
    overrides: { taskResourceLocalHandlers: local, waitTimeOverrides: waits, retryIntervalOverrides: retries },
    context: {
      Execution: { Name: record.name, Id: record.arn, Input: input as LibJson, StartTime: new Date().toISOString() },
    },
  };
  // The library passes its run options on to Map iterations and Parallel branches: the checks reach them too.
  const execution = machine.run(input as LibJson, Object.assign(runOptions, { [LIMITS]: limits }));
  const stop = () => execution.abort();
  run.options.signal?.addEventListener('abort', stop, { once: true });
  if (run.options.signal?.aborted) stop();
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      const e = event as unknown as EventLog;
      record.events.push(e);
      run.all.push(e);
      run.options.onEvent?.(e, record);
    }
  })();
  try {
    const output = (await execution.result) as Json;
    await collecting;
    record.output = output;
    return output;
  } catch (error) {
    await collecting.catch(() => undefined);
    const failed = record.events.find((e) => e.type === 'ExecutionFailed');
    const e = error as { name?: string; message?: string; cause?: { name?: string; message?: string } };
    record.error = { name: failed?.Error ?? e.cause?.name ?? e.name ?? 'Error', cause: String(failed?.Cause ?? e.cause?.message ?? e.message ?? '') };
    throw new ChildExecutionFailed(record.error.cause);
  } finally {
    run.options.signal?.removeEventListener('abort', stop);
  }
}

/** A StartExecution.sync:2 Task: run the child to its end and answer as DescribeExecution does (Output parsed). */
async function startChild(run: Run, child: LoadedDefinition & { id: string; arn: string }, event: { Name: string; Input: Json }): Promise<LibJson> {
  const arn = `${child.arn.replace(':stateMachine:', ':execution:')}:${event.Name}`;
  const refused = executionNameProblem(String(event.Name));
  // StartExecution refuses the name: the Task fails (Step Functions names the service's exception).
  if (refused) throw lambdaError(refused.code === 'InvalidName' ? 'StepFunctions.InvalidNameException' : 'StepFunctions.ValidationException', refused.message);
  // A stopped run starts nothing new.
  if (run.options.signal?.aborted) throw lambdaError('States.Runtime', 'The execution was stopped');
  const record: ExecutionRecord = { name: event.Name, arn, stateMachine: child.id, events: [] };
  run.executions.push(record);
  const startDate = new Date().toISOString();
  try {
    const output = await execute(run, child, event.Input, record);
    return { ExecutionArn: arn, Name: event.Name, StateMachineArn: child.arn, Status: 'SUCCEEDED', StartDate: startDate, StopDate: new Date().toISOString(), Input: event.Input, Output: output } as unknown as LibJson;
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    // As Step Functions reports a failed child of a .sync Task: States.TaskFailed, the description as cause.
    throw lambdaError('States.TaskFailed', JSON.stringify({ ExecutionArn: arn, Status: 'FAILED', Error: record.error?.name, Cause: record.error?.cause }));
  }
}

export async function runDefinition(input: Json, handlers: Record<string, TaskHandler>, options: RunOptions = {}): Promise<RunResult> {
  const loaded = options.definition ?? loadDefinition();
  const executionName = options.executionName ?? `local-${Date.now()}`;
  // What StartExecution refuses never starts: an invalid name, an input over 262,144 bytes.
  const refused = executionNameProblem(executionName);
  if (refused) throw Object.assign(new Error(refused.message), { name: refused.code });
  const inputBytes = payloadBytes(input);
  if (inputBytes > PAYLOAD_LIMIT_BYTES) {
    throw Object.assign(
      new Error(`1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${PAYLOAD_LIMIT_BYTES} (the execution input has ${inputBytes.toLocaleString('en-US')} bytes)`),
      { name: 'ValidationException' },
    );
  }
  const parent: ExecutionRecord = {
    name: executionName,
    arn: localExecutionArn(executionName),
    stateMachine: 'PipelineStateMachine',
    events: [],
  };
  const run: Run = { handlers, options, all: [], executions: [parent], inflight: new Set() };
  try {
    const output = await execute(run, loaded, input, parent);
    return { output, manifest: await manifestFrom(run, parent), events: run.all, executions: run.executions };
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    const aborted = options.signal?.aborted === true;
    if (aborted) await settle(run, options.settleMs ?? 30_000);
    return {
      manifest: await manifestFrom(run, parent),
      error: aborted ? { name: 'ExecutionAborted', cause: 'The execution was stopped' } : (parent.error ?? { name: 'Error', cause: error.message }),
      events: run.all,
      executions: run.executions,
      ...(aborted ? { aborted } : {}),
    };
  }
}

/** Let the handlers already invoked finish (up to `ms`), as a stopped execution's in-flight Lambda invocations do. */
async function settle(run: Run, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...run.inflight]),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
