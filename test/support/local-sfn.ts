/**
 * Runs the real state machine definition with aws-local-stepfunctions, each Task resolved to one of our
 * handlers. Thrown errors are shaped as Lambda reports them to Step Functions (Error = errorType,
 * Cause = JSON with errorType and errorMessage), so Retry, Catch and the cause parsing behave as deployed.
 */
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';
import { parse } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Definition = { States: Record<string, Record<string, unknown>>; StartAt: string } & Record<string, unknown>;
export type TaskHandler = (event: unknown) => Promise<unknown>;
/** The part of aws-local-stepfunctions' event log the tests read. */
export interface EventLog {
  type: string;
  state?: { name: string; type: string; output?: unknown };
  Error?: string;
  Cause?: unknown;
}

export const DEFINITION_PATH = new URL('../../statemachine/pipeline.asl.yml', import.meta.url);

/** The definition as serverless.yml loads it, function references replaced by Lambda ARNs. */
export function loadDefinition(): { definition: Definition; taskFunctions: Record<string, string> } {
  const raw = parse(readFileSync(DEFINITION_PATH, 'utf8')) as Definition;
  const taskFunctions: Record<string, string> = {};
  const walk = (states: Record<string, Record<string, unknown>>) => {
    for (const [name, state] of Object.entries(states)) {
      const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined;
      if (state.Type === 'Task' && resource?.['Fn::GetAtt']) {
        const fn = resource['Fn::GetAtt'][0];
        taskFunctions[name] = fn;
        state.Resource = `arn:aws:lambda:eu-west-1:123456789012:function:encrypted-ami-pipeline-test-${fn}`;
      }
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
      if (processor) walk(processor.States);
      for (const branch of (state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) walk(branch.States);
    }
  };
  walk(raw.States);
  return { definition: raw, taskFunctions };
}

/** Every state of the definition, nested ones included. */
export function allStates(definition: Definition): [string, Record<string, unknown>][] {
  const out: [string, Record<string, unknown>][] = [];
  const walk = (states: Record<string, Record<string, unknown>>) => {
    for (const [name, state] of Object.entries(states)) {
      out.push([name, state]);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
      if (processor) walk(processor.States);
      for (const branch of (state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States);
  return out;
}

class LambdaError extends Error {}

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

export interface RunResult {
  output?: Json;
  /** The manifest the Report* states built, whether the run then succeeded or failed. */
  manifest?: Json;
  error?: { name: string; cause: string };
  events: EventLog[];
}

export async function runDefinition(
  input: Json,
  handlers: Record<string, TaskHandler>,
  options: { executionName?: string; definition?: Definition } = {},
): Promise<RunResult> {
  const { definition, taskFunctions } = options.definition ? { definition: options.definition, taskFunctions: loadDefinition().taskFunctions } : loadDefinition();
  const local: Record<string, (input: Json) => Promise<Json>> = {};
  for (const [state, fn] of Object.entries(taskFunctions)) {
    const handler = handlers[fn];
    if (!handler) throw new Error(`no handler for function ${fn} (state ${state})`);
    local[state] = asLambda(handler);
  }
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  for (const [name, state] of allStates(definition)) {
    if (state.Type === 'Wait') waits[name] = 0;
    if (state.Retry) retries[name] = 0;
  }
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: local as never, waitTimeOverrides: waits, retryIntervalOverrides: retries },
    context: { Execution: { Name: options.executionName ?? 'test-execution', Input: input as never, StartTime: new Date().toISOString() } },
  });
  const events: EventLog[] = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs) events.push(event as unknown as EventLog);
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
