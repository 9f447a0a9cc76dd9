/**
 * Runs the real state machine definition with aws-local-stepfunctions, each Task resolved to one of our
 * functions. Thrown errors are shaped as Lambda reports them to Step Functions (Error = errorType,
 * Cause = JSON with errorType and errorMessage), so Retry, Catch and the cause parsing behave as deployed.
 * Wait states and retry intervals are shortened; the loops themselves are unchanged.
 */
import './polyfill';
import { readFileSync } from 'node:fs';
import { StateMachine, type RunOptions as LibRunOptions, type StateMachineDefinition } from 'aws-local-stepfunctions';

/** The library's own names for a JSON value and for the local Task handlers. */
type LibJson = Parameters<StateMachine['run']>[0];
type LibHandlers = NonNullable<NonNullable<LibRunOptions['overrides']>['taskResourceLocalHandlers']>;
import { parse } from 'yaml';

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

/** The definition as serverless.yml loads it, each `Fn::GetAtt: [function, Arn]` replaced by a Lambda ARN. */
export function loadDefinition(path: URL | string = DEFINITION_PATH): { definition: Definition; taskFunctions: Record<string, string> } {
  const definition = parse(readFileSync(path, 'utf8')) as Definition;
  const taskFunctions: Record<string, string> = {};
  for (const [name, state] of allStates(definition)) {
    const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined;
    if (state.Type === 'Task' && resource?.['Fn::GetAtt']) {
      const fn = resource['Fn::GetAtt'][0];
      taskFunctions[name] = fn;
      state.Resource = `arn:aws:lambda:us-east-1:123456789012:function:encrypted-ami-pipeline-local-${fn}`;
    }
  }
  return { definition, taskFunctions };
}

class LambdaError extends Error {}

/** Invoke a handler as Lambda would for Step Functions: JSON in, JSON out, errors as errorType + JSON cause. */
export function asLambda(handler: TaskHandler): (input: Json) => Promise<Json> {
  return async (input) => {
    try {
      const result = await handler(JSON.parse(JSON.stringify(input)));
      return JSON.parse(JSON.stringify(result ?? null)) as Json;
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      const wrapped = new LambdaError(JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] }));
      wrapped.name = e.name;
      throw wrapped;
    }
  };
}

/**
 * Read the manifest from the Report* state's output rather than from the failure's cause: aws-local-stepfunctions
 * 3.0.0 does not escape quotes nested inside strings in States.JsonToString (AWS does), so the cause it builds
 * can be invalid JSON when an error message quotes JSON.
 */
function manifestFrom(events: EventLog[]): Json | undefined {
  const exited = events.filter((e) => e.type === 'StateExited' && /^Report(Succeeded|Partial|Failed)$/.test(e.state?.name ?? ''));
  const last = exited[exited.length - 1]?.state?.output as { manifest?: Json } | undefined;
  return last?.manifest;
}

export interface RunResult {
  output?: Json;
  /** The manifest the Report* states built, whether the run then succeeded or failed. */
  manifest?: Json;
  error?: { name: string; cause: string };
  events: EventLog[];
}

export interface RunOptions {
  executionName?: string;
  /** Milliseconds every Wait state lasts (default 0). */
  waitMs?: number;
  /** Milliseconds before every retry (default 0). */
  retryMs?: number;
  /** Called with each event as it happens. */
  onEvent?: (event: EventLog) => void;
  definition?: { definition: Definition; taskFunctions: Record<string, string> };
}

export async function runDefinition(input: Json, handlers: Record<string, TaskHandler>, options: RunOptions = {}): Promise<RunResult> {
  const { definition, taskFunctions } = options.definition ?? loadDefinition();
  const local: LibHandlers = {};
  for (const [state, fn] of Object.entries(taskFunctions)) {
    const handler = handlers[fn];
    if (!handler) throw new Error(`no handler for function ${fn} (state ${state})`);
    const invoke = asLambda(handler);
    local[state] = (event) => invoke(event as Json) as Promise<LibJson>;
  }
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  for (const [name, state] of allStates(definition)) {
    if (state.Type === 'Wait') waits[name] = options.waitMs ?? 0;
    if (state.Retry) retries[name] = options.retryMs ?? 0;
  }
  // The YAML is ASL; the library validates it on construction.
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, { validationOptions: { checkArn: false } });
  const executionName = options.executionName ?? `local-${Date.now()}`;
  const execution = machine.run(input as LibJson, {
    overrides: { taskResourceLocalHandlers: local, waitTimeOverrides: waits, retryIntervalOverrides: retries },
    context: {
      Execution: { Name: executionName, Id: `arn:aws:states:local:123456789012:execution:pipeline:${executionName}`, Input: input as LibJson, StartTime: new Date().toISOString() },
    },
  });
  const events: EventLog[] = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      const e = event as unknown as EventLog;
      events.push(e);
      options.onEvent?.(e);
    }
  })();
  try {
    const output = (await execution.result) as Json;
    await collecting;
    return { output, manifest: manifestFrom(events), events };
  } catch (error) {
    await collecting.catch(() => undefined);
    const failed = events.find((e) => e.type === 'ExecutionFailed');
    const e = error as { name?: string; message?: string; cause?: { name?: string; message?: string } };
    return {
      manifest: manifestFrom(events),
      error: { name: failed?.Error ?? e.cause?.name ?? e.name ?? 'Error', cause: String(failed?.Cause ?? e.cause?.message ?? e.message ?? '') },
      events,
    };
  }
}
