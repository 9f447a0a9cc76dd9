/**
 * Runs the real state machine definition with aws-local-stepfunctions, each Task resolved to one of our
 * functions. Thrown errors are shaped as Lambda reports them to Step Functions (Error = errorType,
 * Cause = JSON with errorType and errorMessage), so Retry, Catch and the cause parsing behave as deployed.
 * Wait states and retry intervals are shortened; the loops themselves are unchanged. AWS's limits hold
 * (local/limits.ts): payload sizes, error and cause lengths, execution names, 25,000 history events.
 */
import './polyfill';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StateMachine, type RunOptions as LibRunOptions, type StateMachineDefinition } from 'aws-local-stepfunctions';

/** The library's own names for a JSON value and for the local Task handlers. */
type LibJson = Parameters<StateMachine['run']>[0];
type LibHandlers = NonNullable<NonNullable<LibRunOptions['overrides']>['taskResourceLocalHandlers']>;
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { runDistributedMap, type ChildOutcome, type DistributedMapConfig, type MapRunState } from './distributed-map';
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
import { looksLikeRunSummary, type RunSummary } from '../functions/shared/manifest-schema';
import {
  keepExecution,
  REDRIVE_HISTORY_EVENTS_MAX,
  redrivable,
  resumePoint,
  type ExecutionStatus,
  type ResumePoint,
  type StoredExecution,
} from './redrive';

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
  /** On the ExecutionRedriven event that opens a redrive's events. */
  redriveCount?: number;
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
  distributedMaps: Record<string, DistributedMapConfig & { child: LoadedDefinition; express: boolean }>;
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
        const { ItemProcessor, ...config } = state as { ItemProcessor: { StartAt: string; States: States; ProcessorConfig?: { ExecutionType?: string } } } & Record<string, unknown>;
        distributedMaps[name] = {
          name,
          state: config,
          child: loadFrom({ StartAt: ItemProcessor.StartAt, States: ItemProcessor.States }),
          express: ItemProcessor.ProcessorConfig?.ExecutionType === 'EXPRESS',
        };
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
 * Invoke a handler as Lambda would for Step Functions: JSON in, JSON out, errors as errorType + JSON cause (errorType, errorMessage, trace; cut
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
      // As the Node.js runtime reports a thrown error: its stack, first line "Name: message", as `trace`
      // ("AWS Lambda function errors in Node.js", Lambda Developer Guide): the message is in the cause twice.
      throw lambdaError(e.name, JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? `${e.name}: ${e.message}`).split('\n') }));
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
  const exited = parent.events.filter((e) => e.type === 'StateExited' && looksLikeRunSummary((e.state?.output as { manifest?: unknown } | undefined)?.manifest));
  const summary = (exited[exited.length - 1]?.state?.output as { manifest?: Json } | undefined)?.manifest;
  if (summary === undefined) return {};
  // Without a manifest in S3 (the run stopped before its targets), the manifest is the summary with no target line.
  const alone = { ...(summary as object), results: [] } as Json;
  const location = (summary as unknown as RunSummary).manifest;
  if (!location) return { summary, manifest: alone };
  try {
    const out = await new S3Client({ region: process.env.AWS_REGION ?? LOCAL_REGION }).send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
    return { summary, manifest: JSON.parse((await out.Body?.transformToString('utf-8')) ?? 'null') as Json };
  } catch {
    return { summary, manifest: alone };
  }
}

/** One execution of a local run: the parent, or a child it started. */
export interface ExecutionRecord {
  name: string;
  arn: string;
  /** serverless.yml id of its state machine (the parent's, for its Distributed Map's children too). */
  stateMachine: string;
  /** Set on a child execution of a Distributed Map: the Map state that started it. */
  mapState?: string;
  /** This execution's own events (on a redrive, those of this attempt, from its ExecutionRedriven event). */
  events: EventLog[];
  output?: Json;
  error?: { name: string; cause: string };
  /** How it ended (RUNNING until then). */
  status?: ExecutionStatus;
  /** Times it was redriven (`$$.Execution.RedriveCount`). */
  redriveCount?: number;
  /** Events of its history, every attempt's, as local/history.ts counts them. */
  historyEvents?: number;
  /** Unsuccessful: where a redrive resumes it. */
  resume?: ResumePoint;
}

export interface RunResult {
  /** The run's execution ARN (RedriveExecution takes it). */
  executionArn: string;
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
  /**
   * The state machine the definition is deployed as: its serverless.yml id (the executions' `stateMachine`) and its
   * name (in its Map Runs' and children's ARNs). Default the pipeline's.
   */
  stateMachine?: { id: string; name: string };
  /** Replace a Wait state's behaviour (a virtual clock): called with the state's name, definition and input; returns the input. */
  waitHandler?: (state: Record<string, unknown>, input: Json) => Promise<Json>;
}

export interface RedriveOptions extends Omit<RunOptions, 'executionName' | 'definition'> {
  /** The clock RedriveExecution's 14-day rule reads (default: now). */
  now?: () => Date;
}

class ChildExecutionFailed extends Error {}

interface Run {
  handlers: Record<string, TaskHandler>;
  options: RunOptions;
  all: EventLog[];
  executions: ExecutionRecord[];
  /** Handler invocations and child executions not yet settled. */
  inflight: Set<Promise<unknown>>;
}

/** One attempt of an execution: its first, or a redrive resuming where the last one stopped. */
interface Attempt {
  redriveCount: number;
  /** History events of the earlier attempts. */
  historyEvents: number;
  /** Undefined: from StartAt. */
  resume?: ResumePoint;
  /** The Map Runs of this execution, by Map state (kept across attempts). */
  mapRuns: Record<string, MapRunState>;
  /** A redrive resuming at a Distributed Map state whose Map Run did not finish: that Map Run is redriven. */
  redriveMapRun?: string;
}

const firstAttempt = (): Attempt => ({ redriveCount: 0, historyEvents: 0, mapRuns: {} });

/** The Pass state a redrive starts at: it hands the resumed state its input (the execution input stays the same). */
const REDRIVE_STATE = 'LocalRunnerRedrive';

/** The definition starting at the resumed state, with the input it was entered with. */
function resumedAt(loaded: LoadedDefinition, resume: ResumePoint): LoadedDefinition {
  const definition = structuredClone(loaded.definition);
  definition.States[REDRIVE_STATE] = { Type: 'Pass', Result: resume.input, Next: resume.state };
  definition.StartAt = REDRIVE_STATE;
  return { ...loaded, definition };
}

const statusOf = (events: readonly EventLog[]): ExecutionStatus =>
  events.some((e) => e.type === 'ExecutionAborted') ? 'ABORTED' : events.some((e) => e.type === 'ExecutionTimeout') ? 'TIMED_OUT' : 'FAILED';

function track<T>(run: Run, promise: Promise<T>): Promise<T> {
  run.inflight.add(promise);
  promise.then(
    () => run.inflight.delete(promise),
    () => run.inflight.delete(promise),
  );
  return promise;
}

async function execute(run: Run, loaded: LoadedDefinition, input: Json, record: ExecutionRecord, attempt: Attempt = firstAttempt()): Promise<Json> {
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
  let redriveMapRun = attempt.redriveMapRun;
  for (const [state, map] of Object.entries(loaded.distributedMaps)) {
    local[state] = (async (event: unknown) => {
      // Only the Map state the redrive resumes at redrives its Map Run; entered again later, it starts a new one.
      const previous = redriveMapRun === state ? attempt.mapRuns[state] : undefined;
      redriveMapRun = undefined;
      return runDistributedMap(map, event as Json, {
        executionName: record.name,
        executionArn: record.arn,
        stateMachineName: run.options.stateMachine?.name ?? LOCAL_STATE_MACHINE,
        region: process.env.AWS_REGION ?? LOCAL_REGION,
        account: LOCAL_ACCOUNT,
        ...(previous ? { previous } : {}),
        onStart: (mapRun) => {
          attempt.mapRuns[state] = mapRun;
        },
        runChild: (input, name, arn, last) => runMapChild(run, map, input, name, arn, state, record.stateMachine, last),
      });
    }) as LibHandlers[string];
  }
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  const { machine, waitStates, shape } = machineFor(attempt.resume ? resumedAt(loaded, attempt.resume) : loaded, Boolean(run.options.waitHandler));
  const waitHandler = run.options.waitHandler;
  if (waitHandler) {
    for (const [name, original] of Object.entries(waitStates)) local[name] = ((event: unknown) => waitHandler(original, event as Json)) as LibHandlers[string];
  }
  for (const [name, state] of allStates(definition)) {
    if (state.Type === 'Wait') waits[name] = run.options.waitMs ?? 0;
    if (state.Retry) retries[name] = run.options.retryMs ?? 0;
  }
  // A redrive appends to the execution's history: ExecutionRedriven, then this attempt's events.
  const counter = historyCounter(shape, attempt.historyEvents);
  let historyEvents = attempt.historyEvents + 2;
  const limits: LimitContext = {
    execution: record.name,
    countEvent: (e) => (e.state?.name === REDRIVE_STATE ? historyEvents : (historyEvents = counter(e))),
  };
  record.status = 'RUNNING';
  record.redriveCount = attempt.redriveCount;
  const now = new Date().toISOString();
  const runOptions: LibRunOptions = {
    overrides: { taskResourceLocalHandlers: local, waitTimeOverrides: waits, retryIntervalOverrides: retries },
    context: {
      Execution: {
        Name: record.name,
        Id: record.arn,
        Input: input as LibJson,
        StartTime: now,
        RedriveCount: attempt.redriveCount,
        ...(attempt.redriveCount > 0 ? { RedriveTime: now } : {}),
      },
    },
  };
  // The library passes its run options on to Map iterations and Parallel branches: the checks reach them too.
  const execution = machine.run(input as LibJson, Object.assign(runOptions, { [LIMITS]: limits }));
  const stop = () => execution.abort();
  run.options.signal?.addEventListener('abort', stop, { once: true });
  if (run.options.signal?.aborted) stop();
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      let e = event as unknown as EventLog;
      // The redrive's Pass state is the runner's, not the execution's; a redrive is not started again but redriven.
      if (e.state?.name === REDRIVE_STATE) continue;
      if (e.type === 'ExecutionStarted' && attempt.redriveCount > 0) e = { type: 'ExecutionRedriven', timestamp: e.timestamp ?? Date.now(), redriveCount: attempt.redriveCount };
      record.events.push(e);
      run.all.push(e);
      run.options.onEvent?.(e, record);
    }
  })();
  try {
    const output = (await execution.result) as Json;
    await collecting;
    record.output = output;
    record.status = 'SUCCEEDED';
    delete record.resume;
    return output;
  } catch (error) {
    await collecting.catch(() => undefined);
    const failed = record.events.find((e) => e.type === 'ExecutionFailed');
    const e = error as { name?: string; message?: string; cause?: { name?: string; message?: string } };
    record.error = { name: failed?.Error ?? e.cause?.name ?? e.name ?? 'Error', cause: String(failed?.Cause ?? e.cause?.message ?? e.message ?? '') };
    record.status = statusOf(record.events);
    // An attempt that entered no state resumes where the last one would have.
    const resume = resumePoint(record.events) ?? attempt.resume;
    if (resume) record.resume = resume;
    throw new ChildExecutionFailed(record.error.cause);
  } finally {
    record.historyEvents = historyEvents;
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
    // A redrive's definition is the validated one plus the Pass it starts at (which leaves the first states unreachable).
    machine: new StateMachine(shaped as unknown as StateMachineDefinition, {
      validationOptions: { checkArn: false, ...(REDRIVE_STATE in shaped.States ? { noValidate: true } : {}) },
    }),
    waitStates,
    shape: historyShape(loaded),
  };
  machines.set(loaded, { ...cached, [kind]: machine });
  return machine;
}

/**
 * One child execution of a Distributed Map: run to its end, its outcome as the Map Run records it. With the outcome of
 * its last attempt (its Map Run redriven), a Standard child is redriven from its own unsuccessful state; an Express one
 * is started again; one past the redrive history limit stays as it was.
 */
async function runMapChild(
  run: Run,
  map: LoadedDefinition['distributedMaps'][string],
  input: Json,
  name: string,
  arn: string,
  mapState: string,
  stateMachine: string,
  last?: ChildOutcome,
): Promise<ChildOutcome> {
  // A child's input is a Map iteration's input (after ItemSelector): over 262,144 bytes, the Map Run fails.
  checkPayload(input, mapState, 'Map iteration input (a child execution\'s input)');
  // A stopped run starts nothing new.
  if (run.options.signal?.aborted) throw lambdaError('States.Runtime', 'The execution was stopped');
  if (last?.redrive && last.redrive.historyEvents >= REDRIVE_HISTORY_EVENTS_MAX) return last;
  const redrive = last && !map.express ? last : undefined;
  if (last && !redrive) [name, arn] = [randomUUID(), arn.replace(/:[^:]+$/, `:${randomUUID()}`)];
  const attempt: Attempt = redrive
    ? { redriveCount: redrive.redriveCount + 1, historyEvents: redrive.redrive?.historyEvents ?? 0, mapRuns: {}, ...(redrive.redrive?.resume ? { resume: redrive.redrive.resume } : {}) }
    : firstAttempt();
  // A Map Run's children are executions of the parent's own state machine.
  const record: ExecutionRecord = { name, arn, stateMachine, mapState, events: [] };
  run.executions.push(record);
  const startDate = new Date().toISOString();
  const base = { name, arn, input, startDate, redriveCount: attempt.redriveCount };
  const running = execute(run, map.child, input, record, attempt);
  track(run, running);
  try {
    const output = await running;
    return { ...base, status: 'SUCCEEDED', output, stopDate: new Date().toISOString() };
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    return {
      ...base,
      status: record.status === 'ABORTED' || record.status === 'TIMED_OUT' ? record.status : 'FAILED',
      error: record.error ?? { name: 'States.Runtime', cause: error.message },
      stopDate: new Date().toISOString(),
      redrive: { historyEvents: record.historyEvents ?? 0, resume: record.resume },
    };
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
  const stored: StoredExecution = {
    arn: localExecutionArn(executionName),
    name: executionName,
    loaded,
    input,
    status: 'RUNNING',
    redriveCount: 0,
    historyEvents: 0,
    mapRuns: {},
  };
  keepExecution(stored);
  return runAttempt(stored, handlers, options, { ...firstAttempt(), mapRuns: stored.mapRuns });
}

/**
 * RedriveExecution of a run this process ran (runDefinition): the same execution (ARN, input, definition) goes on
 * from its unsuccessful state, entered with the input it had, with the handlers given here; what succeeded is not run
 * again, and a Distributed Map state that had not exited redrives its Map Run. Throws ExecutionDoesNotExist, or
 * ExecutionNotRedrivable with the reason (running, succeeded, 14 days past its stop, 24,999 history events).
 */
export async function redriveExecution(executionArn: string, handlers: Record<string, TaskHandler>, options: RedriveOptions = {}): Promise<RunResult> {
  const stored = redrivable(executionArn, options.now?.() ?? new Date());
  stored.status = 'RUNNING';
  stored.redriveCount += 1;
  delete stored.stopDate;
  keepExecution(stored);
  const resumeAt = stored.resume?.state;
  return runAttempt(stored, handlers, options, {
    redriveCount: stored.redriveCount,
    historyEvents: stored.historyEvents,
    mapRuns: stored.mapRuns,
    ...(stored.resume ? { resume: stored.resume } : {}),
    ...(resumeAt && stored.mapRuns[resumeAt] && stored.loaded.distributedMaps[resumeAt] ? { redriveMapRun: resumeAt } : {}),
  });
}

async function runAttempt(stored: StoredExecution, handlers: Record<string, TaskHandler>, options: RunOptions, attempt: Attempt): Promise<RunResult> {
  const parent: ExecutionRecord = { name: stored.name, arn: stored.arn, stateMachine: options.stateMachine?.id ?? 'PipelineStateMachine', events: [] };
  const run: Run = { handlers, options, all: [], executions: [parent], inflight: new Set() };
  try {
    const output = await execute(run, stored.loaded, stored.input, parent, attempt);
    return { executionArn: stored.arn, output, ...(await manifestFrom(parent)), events: run.all, executions: run.executions };
  } catch (error) {
    if (!(error instanceof ChildExecutionFailed)) throw error;
    const aborted = options.signal?.aborted === true;
    if (aborted) await settle(run, options.settleMs ?? 30_000);
    return {
      executionArn: stored.arn,
      ...(await manifestFrom(parent)),
      error: aborted ? { name: 'ExecutionAborted', cause: 'The execution was stopped' } : (parent.error ?? { name: 'Error', cause: error.message }),
      events: run.all,
      executions: run.executions,
      ...(aborted ? { aborted } : {}),
    };
  } finally {
    stored.status = parent.status === 'RUNNING' || parent.status === undefined ? 'FAILED' : parent.status;
    stored.stopDate = new Date();
    stored.historyEvents = parent.historyEvents ?? stored.historyEvents;
    if (parent.resume) stored.resume = parent.resume;
    else delete stored.resume;
    // A succeeded execution is never redriven: its Map Runs (every child's input and output) need not be kept.
    if (stored.status === 'SUCCEEDED') for (const state of Object.keys(stored.mapRuns)) delete stored.mapRuns[state];
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
