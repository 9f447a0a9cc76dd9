/**
 * The execution history AWS would write for a local run: aws-local-stepfunctions logs states entered and
 * exited, Step Functions logs more per state (a Lambda Task is entered, scheduled, started, succeeded, exited).
 * Counting them says how close an execution comes to the 25,000-event limit. One execution's events in, its
 * event count out; the budget test and `npm run bench` share this, and the runner counts as it runs (past
 * 25,000 the execution fails, as on AWS: local/limits.ts).
 */
import { allStates, type EventLog, type LoadedDefinition } from './asl';

/** History events AWS writes per state entered, by state type (a Lambda Task: entered, scheduled, started, succeeded, exited). */
export const EVENTS_BY_TYPE: Record<string, number> = { Task: 5, Wait: 2, Choice: 2, Pass: 2, Parallel: 4, Map: 4, Succeed: 2, Fail: 1 };
/** A StartExecution.sync Task: entered, scheduled, started, submitted, succeeded, exited. */
export const EVENTS_PER_CHILD_TASK = 6;
/** A retry: the failure, then scheduled and started again. */
export const EVENTS_PER_RETRY = 3;
/** ExecutionStarted and ExecutionSucceeded (or Failed). */
export const EVENTS_PER_EXECUTION = 2;

/** What the event log alone does not say about a state. */
export interface HistoryShape {
  /** Names of StartExecution.sync Task states. */
  childTasks?: Iterable<string>;
  /**
   * Each state's type in the definition, by name: a run with a `waitHandler` logs its Wait states as Tasks,
   * and this puts them back.
   */
  stateTypes?: Record<string, string>;
}

/** The shape of a loaded definition and the children it starts (state names are unique across them). */
export function historyShape(loaded: LoadedDefinition): HistoryShape {
  const childTasks = new Set<string>();
  const stateTypes: Record<string, string> = {};
  const walk = (l: LoadedDefinition) => {
    for (const [name, state] of allStates(l.definition)) stateTypes[name] = String(state.Type);
    for (const [name, map] of Object.entries(l.distributedMaps)) {
      // Run locally as a Task; AWS writes MapStateEntered, MapRunStarted, MapRunSucceeded, MapStateExited.
      stateTypes[name] = 'Map';
      walk(map.child);
    }
    for (const [name, child] of Object.entries(l.childTasks)) {
      childTasks.add(name);
      walk(child);
    }
  };
  walk(loaded);
  return { childTasks, stateTypes };
}

/** History events AWS writes for one event of the local log (0 for those it has no counterpart of). */
export function historyEventWeight(e: Pick<EventLog, 'type' | 'state'>, shape: HistoryShape = {}, childTasks: ReadonlySet<string> = new Set(shape.childTasks ?? [])): number {
  if (e.type === 'StateEntered') {
    const name = e.state?.name ?? '';
    const type = shape.stateTypes?.[name] ?? e.state?.type ?? '';
    return type === 'Task' && childTasks.has(name) ? EVENTS_PER_CHILD_TASK : (EVENTS_BY_TYPE[type] ?? 2);
  }
  if (e.type === 'StateRetried') return EVENTS_PER_RETRY;
  if (e.type === 'MapIterationStarted' || e.type === 'MapIterationSucceeded' || e.type === 'MapIterationFailed') return 1;
  return 0;
}

/** History events AWS would write for one execution with these events (pass a single execution's events). */
export function awsHistoryEvents(events: readonly EventLog[], shape: HistoryShape = {}): number {
  const childTasks = new Set(shape.childTasks ?? []);
  let total = EVENTS_PER_EXECUTION;
  for (const e of events) total += historyEventWeight(e, shape, childTasks);
  return total;
}

/**
 * A running count for one execution, as the local runner keeps it while the execution runs: past
 * HISTORY_EVENTS_MAX (25,000) the execution fails, as on AWS. `earlier`: the events of the attempts a redrive goes on from.
 */
export function historyCounter(shape: HistoryShape = {}, earlier = 0): (e: Pick<EventLog, 'type' | 'state'>) => number {
  const childTasks = new Set(shape.childTasks ?? []);
  // A redrive appends to the earlier attempts' history: ExecutionRedriven instead of ExecutionStarted, and its end.
  let total = earlier + EVENTS_PER_EXECUTION;
  return (e) => (total += historyEventWeight(e, shape, childTasks));
}
