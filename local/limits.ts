/**
 * AWS's own limits, held by the local runner (docs/limits.md lists each with its source). aws-local-stepfunctions
 * enforces none of them; `installLimits` hooks the library's state loop so a run that AWS would fail fails here too,
 * with the state, the size and the limit in the message. Only runs that pass a `LimitContext` (the runner's) are checked.
 */
import { StateMachine } from 'aws-local-stepfunctions';

/** Execution input, every state's input (after Parameters) and output, a Task's result, an execution's output: bytes of UTF-8. */
export const PAYLOAD_LIMIT_BYTES = 262_144;
/** A failure's error and cause (Fail states, task failures, the execution's failure), in characters. */
export const ERROR_MAX_CHARS = 256;
export const CAUSE_MAX_CHARS = 32_768;
/** Names of executions (and state machines, activities). */
export const EXECUTION_NAME_MAX_CHARS = 80;
/** History events of one Standard execution. */
export const HISTORY_EVENTS_MAX = 25_000;
/** Lambda synchronous invocation: request and response, 6 MB each. */
export const LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;

/** Bytes of a JSON value as Step Functions measures a payload: its JSON text in UTF-8. */
export function payloadBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null), 'utf8');
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * A limit-caused failure as aws-local-stepfunctions sees errors (`isRetryable`, `isCatchable`). Terminal ones
 * are neither retried nor caught, not even by a Catch that names them: AWS raises them outside the state's error
 * handling (after the state ran), so the execution fails.
 */
export class LimitError extends Error {
  constructor(
    name: string,
    message: string,
    private readonly terminal: boolean,
  ) {
    super(message);
    this.name = name;
  }
  get isRetryable(): boolean {
    return !this.terminal;
  }
  get isCatchable(): boolean {
    return !this.terminal;
  }
}

/** AWS's cause for an oversized payload ("The state/task 'X' returned a result with a size exceeding ..."), with the sizes. */
export function dataLimitExceeded(stateOrTask: string, what: string, bytes: number, terminal: boolean): LimitError {
  return new LimitError(
    'States.DataLimitExceeded',
    `The state/task '${stateOrTask}' returned a result with a size exceeding the maximum number of bytes service limit. ` +
      `(${what}: ${fmt(bytes)} bytes, limit ${fmt(PAYLOAD_LIMIT_BYTES)})`,
    terminal,
  );
}

/** Throws States.DataLimitExceeded when `value` is over the payload limit. */
export function checkPayload(value: unknown, stateOrTask: string, what: string, terminal = true): void {
  const bytes = payloadBytes(value);
  if (bytes > PAYLOAD_LIMIT_BYTES) throw dataLimitExceeded(stateOrTask, what, bytes, terminal);
}

/**
 * A failure's error and cause as the execution history keeps them: at most 256 and 32,768 characters. The API
 * caps both fields (ExecutionFailedEventDetails, TaskFailedEventDetails); what does not fit is cut off.
 */
export function fitFailure(error: string, cause: string): { error: string; cause: string } {
  return { error: error.slice(0, ERROR_MAX_CHARS), cause: cause.slice(0, CAUSE_MAX_CHARS) };
}

// Whitespace, wildcards, brackets, the listed specials and control characters are refused in names.
// eslint-disable-next-line no-control-regex
const NAME_FORBIDDEN = /[\s?*<>{}[\]"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u;

/** Why StartExecution would refuse this execution name, as its error (code and message); undefined when it is valid. */
export function executionNameProblem(name: string): { code: 'ValidationException' | 'InvalidName'; message: string } | undefined {
  const length = [...name].length;
  if (length < 1 || length > EXECUTION_NAME_MAX_CHARS) {
    return {
      code: 'ValidationException',
      message: `1 validation error detected: Value '${name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to ${EXECUTION_NAME_MAX_CHARS} (it has ${length} characters)`,
    };
  }
  const bad = NAME_FORBIDDEN.exec(name);
  if (bad) return { code: 'InvalidName', message: `Invalid Name: '${name}' (character ${JSON.stringify(bad[0])} is not allowed)` };
  return undefined;
}

/** What the state loop needs from the runner for one execution (shared by its Map iterations and Parallel branches). */
export interface LimitContext {
  /** Name of the execution, for messages. */
  execution: string;
  /** History events so far, as history.ts counts them; called with each event the loop records for this execution. */
  countEvent(event: { type: string; state?: { name: string; type: string } }): number;
  /** Set once the history limit is passed: the next state transition anywhere in the execution fails with it. */
  failure?: LimitError;
}

export const LIMITS = Symbol.for('encrypted-ami-pipeline.limits');

type Logger = Record<string, (...args: unknown[]) => unknown>;
type Execute = (this: unknown, input: unknown, options: { eventLogger: Logger; runOptions?: Record<PropertyKey, unknown> }, cleanup: () => void) => Promise<unknown>;

function historyFull(ctx: LimitContext, count: number): void {
  if (count > HISTORY_EVENTS_MAX && !ctx.failure) {
    ctx.failure = new LimitError(
      'States.Runtime',
      `The execution reached the maximum number of history events (${fmt(HISTORY_EVENTS_MAX)}): execution '${ctx.execution}' has ${fmt(count)}.`,
      true,
    );
  }
  if (ctx.failure) throw ctx.failure;
}

/** Wrap one event logger of a checked run: the checks run synchronously, inside the library's state loop. */
function guard(logger: Logger, ctx: LimitContext): void {
  const call = (name: string) => logger[name]!.bind(logger);
  const entered = call('dispatchStateEnteredEvent');
  const exited = call('dispatchStateExitedEvent');
  const retried = call('dispatchStateRetriedEvent');
  const failed = call('dispatchExecutionFailedEvent');
  logger.dispatchStateEnteredEvent = (name, type, input) => {
    if (ctx.failure) throw ctx.failure;
    entered(name, type, input);
    historyFull(ctx, ctx.countEvent({ type: 'StateEntered', state: { name: String(name), type: String(type) } }));
    // The input of a Map iteration or of the execution's first state; later inputs are outputs checked below.
    checkPayload(input, String(name), 'state input');
  };
  logger.dispatchStateExitedEvent = (name, type, input, output) => {
    checkPayload(output, String(name), 'state output');
    exited(name, type, input, output);
  };
  logger.dispatchStateRetriedEvent = (name, type, ...rest) => {
    retried(name, type, ...rest);
    historyFull(ctx, ctx.countEvent({ type: 'StateRetried', state: { name: String(name), type: String(type) } }));
  };
  for (const kind of ['Started', 'Succeeded', 'Failed']) {
    const method = `dispatchMapIteration${kind}Event`;
    const original = call(method);
    // Forwarded from the iteration's own logger after the fact: counted, and the limit fails the next transition.
    logger[method] = (...args) => {
      original(...args);
      const count = ctx.countEvent({ type: `MapIteration${kind}` });
      if (count > HISTORY_EVENTS_MAX) {
        try {
          historyFull(ctx, count);
        } catch {
          // ctx.failure is set; the state loop throws it at its next transition.
        }
      }
    };
  }
  logger.dispatchExecutionFailedEvent = (error) => {
    const e = error as Error & { cause?: unknown };
    const fitted = fitFailure(e.name, typeof e.cause === 'string' ? e.cause : e.message);
    e.name = fitted.error;
    if (typeof e.cause === 'string') e.cause = fitted.cause;
    else e.message = fitted.cause;
    failed(e);
  };
}

let installed = false;

/** Hook aws-local-stepfunctions' state loop (once per process); runs without a LimitContext are left as they are. */
export function installLimits(): void {
  if (installed) return;
  installed = true;
  const proto = StateMachine.prototype as unknown as { execute: Execute };
  const original = proto.execute;
  proto.execute = function (input, options, cleanup) {
    const ctx = options.runOptions?.[LIMITS] as LimitContext | undefined;
    if (ctx) guard(options.eventLogger, ctx);
    return original.call(this, input, options, cleanup);
  };
}
