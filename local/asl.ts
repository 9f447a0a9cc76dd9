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
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { runDistributedMap, type ChildOutcome, type DistributedMapConfig } from './distributed-map';
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
import { installIntrinsicFix } from './intrinsics';
import { isRunSummary } from './manifest';

installLimits();
installIntrinsicFix();

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
/** Where serverless.yml is: `${file(...)}` paths in the definitions are relative to it. */
const SERVICE_DIR = new URL('../', import.meta.url);
/** The state machines a definition may start as child executions (`StateMachineArn: { Ref: <id> }`), by serverless.yml id. */
export const CHILD_DEFINITIONS: Record<string, URL> = {};
const START_EXECUTION_SYNC = 'arn:aws:states:::states:startExecution.sync:2';
/** The local names of the deployed state machine and its account (ARNs of executions, Map Runs and children). */
export const LOCAL_STATE_MACHINE = 'encrypted-ami-pipeline-local';
const LOCAL_ACCOUNT = '123456789012';
const LOCAL_REGION = 'us-east-1';

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
  /** Distributed Map states, by state name: each runs its ItemProcessor as child executions (local/distributed-map.ts). */
  distributedMaps: Record<string, DistributedMapConfig & { child: LoadedDefinition }>;
  /** Lambda Task states, by state name: the serverless.yml function they invoke. */
  taskFunctions: Record<string, string>;
  /** StartExecution.sync Task states, by state name: the child definition they run. */
  childTasks: Record<string, LoadedDefinition & { id: string; arn: string }>;
}

/** `${file(path)}` values replaced by the YAML they name, as serverless.yml resolves them (paths from the service's folder). */
export function resolveFiles(value: unknown): unknown {
  if (typeof value === 'string') {
    const m = /^\$\{file\(([^)]+)\)\}$/.exec(value);
    return m?.[1] ? resolveFiles(parse(readFileSync(new URL(m[1].replace(/^\.\//, ''), SERVICE_DIR), 'utf8'))) : value;
  }
  if (Array.isArray(value)) return value.map(resolveFiles);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveFiles(v)]));
  return value;
}

const isDistributedMap = (state: Record<string, unknown>) =>
  state.Type === 'Map' && (state.ItemProcessor as { ProcessorConfig?: { Mode?: string } } | undefined)?.ProcessorConfig?.Mode === 'DISTRIBUTED';

/** Keys a Task state shares with a Map state: what stays when a Distributed Map becomes the local runner's Task. */
const KEPT_MAP_KEYS = ['Comment', 'InputPath', 'ResultSelector', 'ResultPath', 'OutputPath', 'Retry', 'Catch', 'Next', 'End'];

/**
 * The definition as serverless.yml loads it: `${file()}` includes resolved, each `Fn::GetAtt: [function, Arn]`
 * replaced by a Lambda ARN and each `StateMachineArn: { Ref: <id> }` of a StartExecution.sync Task by a state
 * machine ARN (its definition loaded as well, to run as a child execution). Each Distributed Map state becomes a
 * Task of the same name whose local handler runs the Map Run (its ItemProcessor loaded as the children's definition).
 */
/** The definition as deployed (includes resolved, functions as Lambda ARNs), every state as written: for static checks. */
export function deployedDefinition(path: URL | string = DEFINITION_PATH): Definition {
  const definition = resolveFiles(parse(readFileSync(path, 'utf8'))) as Definition;
  for (const [, state] of allStates(definition)) {
    const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined;
    if (typeof resource === 'object' && resource['Fn::GetAtt']) {
      state.Resource = `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:encrypted-ami-pipeline-local-${resource['Fn::GetAtt'][0]}`;
    }
  }
  return definition;
}

export function loadDefinition(path: URL | string = DEFINITION_PATH): LoadedDefinition {
  return loadFrom(resolveFiles(parse(readFileSync(path, 'utf8'))) as Definition);
}

function loadFrom(definition: Definition): LoadedDefinition {
  const taskFunctions: Record<string, string> = {};
  const childTasks: LoadedDefinition['childTasks'] = {};
  const distributedMaps: LoadedDefinition['distributedMaps'] = {};
  // Distributed Maps first: their ItemProcessor's states are the children's, not this definition's.
  const replace = (states: States) => {
    for (const [name, state] of Object.entries(states)) {
      if (isDistributedMap(state)) {
        const { ItemProcessor, ...config } = state as { ItemProcessor: { StartAt: string; States: States } } & Record<string, unknown>;
        distributedMaps[name] = { name, state: config, child: loadFrom({ StartAt: ItemProcessor.StartAt, States: ItemProcessor.States }) };
        const task: Record<string, unknown> = { Type: 'Task', Resource: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:local-distributed-map-${name}` };
        for (const key of KEPT_MAP_KEYS) if (key in state) task[key] = state[key];
        states[name] = task;
        continue;
      }
      for (const inner of nested(state)) replace(inner);
    }
  };
  replace(definition.States);
  for (const [name, state] of allStates(definition)) {
    const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | string | undefined;
    if (state.Type !== 'Task' || name in distributedMaps) continue;
    if (typeof resource === 'object' && resource['Fn::GetAtt']) {
      const fn = resource['Fn::GetAtt'][0];
      taskFunctions[name] = fn;
      state.Resource = `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:encrypted-ami-pipeline-local-${fn}`;
    } else if (resource === START_EXECUTION_SYNC) {
      const parameters = state.Parameters as { StateMachineArn?: { Ref?: string } };
      const id = parameters.StateMachineArn?.Ref ?? '';
      const file = CHILD_DEFINITIONS[id];
      if (!file) throw new Error(`state ${name} starts ${JSON.stringify(parameters.StateMachineArn)}, which is not a known state machine`);
      const arn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:encrypted-ami-pipeline-local-${id}`;
      parameters.StateMachineArn = arn as never;
      childTasks[name] = { ...loadDefinition(file), id, arn };
    }
  }
  return { definition, taskFunctions, childTasks, distributedMaps };
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
 * The run's summary, read from the state that last set `$.manifest` (RecordManifest, or the Pass states that stand in
 * for it), whether the run succeeded or failed; then the manifest it points at, from the runs bucket, as the CLI reads it.
 */
async function manifestFrom(parent: ExecutionRecord): Promise<{ summary?: Json; manifest?: Json }> {
  const exited = parent.events.filter((e) => e.type === 'StateExited' && isRunSummary((e.state?.output as { manifest?: unknown } | undefined)?.manifest));
  const summary = (exited[exited.length - 1]?.state?.output as { manifest?: Json } | undefined)?.manifest;
  if (!isRunSummary(summary) || !summary.manifest) return summary === undefined ? {} : { summary, manifest: summary };
  try {
    const out = await new S3Client({ region: process.env.AWS_REGION ?? LOCAL_REGION }).send(new GetObjectCommand({ Bucket: summary.manifest.bucket, Key: summary.manifest.key }));
    return { summary, manifest: JSON.parse((await out.Body?.transformToString('utf-8')) ?? 'null') as Json };
  } catch {
    return { summary, manifest: summary as unknown as Json };
  }
}

/** One execution of a local run: the parent, or a child it started. */
export interface ExecutionRecord {
  name: string;
  arn: string;
  /** serverless.yml id of its state machine (PipelineStateMachine for the parent and its Distributed Map's children). */
  stateMachine: string;
  /** Set on a child execution of a Distributed Map: the Map state that started it. */
  mapState?: string;
  /** This execution's own events. */
  events: EventLog[];
  output?: Json;
  error?: { name: string; cause: string };
}

export interface RunResult {
  output?: Json;
  /** The run's summary (its output, or the cause of its failure). */
  summary?: Json;
  /** The manifest RecordManifest wrote to the runs bucket (the summary when there is none), whether the run succeeded or failed. */
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
  for (const [state, map] of Object.entries(loaded.distributedMaps)) {
    local[state] = (async (event: unknown) =>
      runDistributedMap(map, event as Json, {
        executionName: record.name,
        executionArn: record.arn,
        stateMachineName: LOCAL_STATE_MACHINE,
        region: process.env.AWS_REGION ?? LOCAL_REGION,
        account: LOCAL_ACCOUNT,
        runChild: (input, name, arn) => runMapChild(run, map.child, input, name, arn, state),
      })) as LibHandlers[string];
  }
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  const { machine, waitStates, shape } = machineFor(loaded, Boolean(run.options.waitHandler));
  const waitHandler = run.options.waitHandler;
  if (waitHandler) {
    for (const [name, original] of Object.entries(waitStates)) local[name] = ((event: unknown) => waitHandler(original, event as Json)) as LibHandlers[string];
  }
  for (const [name, state] of allStates(definition)) {
    if (state.Type === 'Wait') waits[name] = run.options.waitMs ?? 0;
    if (state.Retry) retries[name] = run.options.retryMs ?? 0;
  }
  const limits: LimitContext = { execution: record.name, countEvent: historyCounter(shape) };
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

interface Machine {
  machine: StateMachine;
  /** What the history counter needs to know of the definition (computed once). */
  shape: ReturnType<typeof historyShape>;
  /** With a wait handler: each Wait state as written, by name (the machine runs it as a Task of the same name). */
  waitStates: Record<string, Record<string, unknown>>;
}
const machines = new WeakMap<LoadedDefinition, Partial<Record<'plain' | 'waits', Machine>>>();

/** The library's state machine for a definition, built once (a run of 1,000 children validates it once, not 1,000 times). */
function machineFor(loaded: LoadedDefinition, waitsAsTasks: boolean): Machine {
  const cached = machines.get(loaded) ?? {};
  const kind = waitsAsTasks ? 'waits' : 'plain';
  const hit = cached[kind];
  if (hit) return hit;
  let shaped: Definition = loaded.definition;
  const waitStates: Machine['waitStates'] = {};
  if (waitsAsTasks) {
    // Each Wait becomes a Task of the same name whose handler does the waiting (the state's transitions and
    // Next stay as they are; only how long it lasts changes).
    shaped = structuredClone(loaded.definition);
    for (const [name, state] of allStates(shaped)) {
      if (state.Type !== 'Wait') continue;
      waitStates[name] = structuredClone(state);
      for (const key of ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath']) delete state[key];
      state.Type = 'Task';
      state.Resource = `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:local-wait-${name}`;
    }
  }
  // The YAML is ASL; the library validates it on construction.
  const machine = {
    machine: new StateMachine(shaped as unknown as StateMachineDefinition, { validationOptions: { checkArn: false } }),
    waitStates,
    shape: historyShape(loaded),
  };
  machines.set(loaded, { ...cached, [kind]: machine });
  return machine;
}

/** One child execution of a Distributed Map: run to its end, its outcome as the Map Run records it. */
async function runMapChild(run: Run, child: LoadedDefinition, input: Json, name: string, arn: string, mapState: string): Promise<ChildOutcome> {
  // A child's input is a Map iteration's input (after ItemSelector): over 262,144 bytes, the Map Run fails.
  checkPayload(input, mapState, 'Map iteration input (a child execution\'s input)');
  // A stopped run starts nothing new.
  if (run.options.signal?.aborted) throw lambdaError('States.Runtime', 'The execution was stopped');
  const record: ExecutionRecord = { name, arn, stateMachine: 'PipelineStateMachine', mapState, events: [] };
  run.executions.push(record);
  const startDate = new Date().toISOString();
  try {
    const output = await execute(run, child, input, record);
    return { name, arn, status: 'SUCCEEDED', input, output, startDate, stopDate: new Date().toISOString() };
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    return { name, arn, status: 'FAILED', input, error: record.error ?? { name: 'States.Runtime', cause: error.message }, startDate, stopDate: new Date().toISOString() };
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
    return { output, ...(await manifestFrom(parent)), events: run.all, executions: run.executions };
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    const aborted = options.signal?.aborted === true;
    if (aborted) await settle(run, options.settleMs ?? 30_000);
    return {
      ...(await manifestFrom(parent)),
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
