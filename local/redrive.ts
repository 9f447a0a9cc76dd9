/**
 * RedriveExecution, as the local runner answers it (docs/fanout.md, "Redrive"). A redrive goes on with the same
 * execution (ARN, input, definition) from its unsuccessful state, entered with the input it had, and keeps what
 * succeeded; `$$.Execution.RedriveCount` counts the redrives. This module keeps what a redrive needs of each execution
 * the runner ran in this process (its status, the state to resume at, its Map Runs) and says whether one may be
 * redriven, with the reason DescribeExecution's redriveStatusReason gives when not.
 *
 * References: RedriveExecution and DescribeExecution in the AWS Step Functions API Reference; "Redriving executions"
 * and "Redriving Map Runs" in the Step Functions Developer Guide.
 */
import type { Json, LoadedDefinition } from './asl';
import type { MapRunState } from './distributed-map';

/** Days after its stop during which an execution can be redriven. */
export const REDRIVABLE_DAYS = 14;
/** An execution's history must stay under this many events to be redriven (room for ExecutionRedriven and one more). */
export const REDRIVE_HISTORY_EVENTS_MAX = 24_999;
/** Executions this process keeps for a redrive, beyond which the oldest ended ones are forgotten (ExecutionDoesNotExist). */
export const KEPT_EXECUTIONS = 10;

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

/** Where a redrive resumes: the unsuccessful state, and the input it was entered with. */
export interface ResumePoint {
  state: string;
  input: Json;
}

/** An execution of the parent state machine, as this process keeps it for RedriveExecution. */
export interface StoredExecution {
  arn: string;
  name: string;
  loaded: LoadedDefinition;
  input: Json;
  status: ExecutionStatus;
  stopDate?: Date;
  redriveCount: number;
  /** Events of its history so far, as local/history.ts counts them (every attempt). */
  historyEvents: number;
  resume?: ResumePoint;
  /** The last Map Run each Distributed Map state started, by state name. */
  mapRuns: Record<string, MapRunState>;
}

/** An error as the Step Functions API returns it (its name is the exception's). */
export class StepFunctionsApiError extends Error {
  constructor(name: 'ExecutionDoesNotExist' | 'ExecutionNotRedrivable', message: string) {
    super(message);
    this.name = name;
  }
}

const kept = new Map<string, StoredExecution>();

export function keepExecution(execution: StoredExecution): void {
  kept.delete(execution.arn);
  kept.set(execution.arn, execution);
  // Forget the oldest ended executions past KEPT_EXECUTIONS (a running one is never forgotten).
  for (const [arn, e] of kept) {
    if (kept.size <= KEPT_EXECUTIONS) break;
    if (e.status !== 'RUNNING') kept.delete(arn);
  }
}

/** The kept execution, or ExecutionDoesNotExist as the API answers it. */
export function storedExecution(executionArn: string): StoredExecution {
  const found = kept.get(executionArn);
  if (!found) throw new StepFunctionsApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
  return found;
}

/**
 * Why RedriveExecution refuses this execution (DescribeExecution's redriveStatusReason), or undefined when it may be
 * redriven: not while it runs, never once it succeeded, within 14 days of its stop, under 24,999 history events.
 * Local runs are Standard executions (serverless.yml sets no type), the only type RedriveExecution accepts.
 */
export function notRedrivableReason(execution: Pick<StoredExecution, 'status' | 'stopDate' | 'historyEvents'>, now: Date): string | undefined {
  if (execution.status === 'RUNNING' || execution.status === 'SUCCEEDED') return `Execution is ${execution.status} and cannot be redriven`;
  if (execution.historyEvents >= REDRIVE_HISTORY_EVENTS_MAX) return 'Execution history event limit exceeded';
  if (execution.stopDate && now.getTime() - execution.stopDate.getTime() > REDRIVABLE_DAYS * 86_400_000) return 'Execution redrivable period exceeded';
  return undefined;
}

/** The kept execution, once RedriveExecution's checks pass (else ExecutionNotRedrivable with the reason). */
export function redrivable(executionArn: string, now: Date): StoredExecution {
  const execution = storedExecution(executionArn);
  const reason = notRedrivableReason(execution, now);
  if (reason) throw new StepFunctionsApiError('ExecutionNotRedrivable', `Execution ${executionArn} cannot be redriven: ${reason}`);
  return execution;
}

/**
 * The state a redrive resumes at: the last state the execution entered before it stopped (its history has no
 * <stateType>Exited for it), with the input it was entered with. Undefined when it entered none.
 */
export function resumePoint(events: readonly { type: string; state?: { name: string; input?: unknown } }[]): ResumePoint | undefined {
  const end = events.findIndex((e) => ['ExecutionFailed', 'ExecutionAborted', 'ExecutionTimeout'].includes(e.type));
  const before = end < 0 ? events : events.slice(0, end);
  for (let i = before.length - 1; i >= 0; i -= 1) {
    const e = before[i];
    if (e?.type === 'StateEntered' && e.state) return { state: e.state.name, input: (e.state.input ?? null) as Json };
  }
  return undefined;
}
