/**
 * The wait schedules of the two poll loops and what they cost in execution history events.
 * The state machine's Wait states read `waitSeconds` from the handlers, which take it from here;
 * input validation refuses runs whose worst case would come near Step Functions' 25,000-event limit.
 * The README's "History budget" section walks through the same arithmetic.
 */

/** First wait, growth factor and cap of the copy poll loop (seconds). */
export const COPY_WAIT = { first: 60, factor: 2, max: 300 } as const;
/** First wait, growth factor and cap of the launch-check poll loop (seconds). */
export const LAUNCH_WAIT = { first: 15, factor: 2, max: 60 } as const;

/** Static ceilings on loop iterations, enforced by the Choice states as well (defence in depth). */
export const MAX_COPY_POLLS = 200;
export const MAX_LAUNCH_POLLS = 100;

/** Half of Step Functions' 25,000-event history limit: what one run may plan for at worst. */
export const MAX_HISTORY_EVENTS_PER_RUN = 12_500;

/** History events of one trip round a poll loop: Wait (2) + Lambda Task (5) + Choice (2). */
export const EVENTS_PER_POLL = 9;
/**
 * Events of one target besides its poll loops, on the longest path (a rekey whose grant revocation fails):
 * Map iteration 2, Parallel 4, IsRekeyTarget 2, ResolveCurrentCopy 5, UseCurrentCopyAsSource 2, IsAlreadyOnNewKey 2,
 * PreflightTarget 5, CopyEncryptImage 5, IsImageAvailable 2, CreateKmsGrant 5, StartLaunchCheck 5,
 * IsLaunchCheckNeeded 2, CleanUpLaunchCheck 5, PublishImage 5, IsRekeyingTarget 2, RevokeOldGrants 5,
 * FindTargetCopy 5, CleanUpFailedTarget 5, IsLambdaErrorCause 2, ParseErrorCause 2, UseErrorMessage 2,
 * RecordTargetFailure 2 = 76; plus 8 task retries at 3 events each = 24.
 */
export const EVENTS_PER_TARGET_FIXED = 100;
/**
 * Events of the run outside the Map's iterations: ExecutionStarted 1, ResolveSource 5, IsSourceOptedIn 2,
 * IsSharingNeeded 2, ShareSource 5, DistributeToTargets 4, IsUnshareNeeded 2, UnshareSource 5, CollectStatuses 2,
 * CountOutcomes 2, HaveAnyTargetsFailed 2, Report* 2, NotifyCompletion 5, IsRunClean 2, PrepareFailure 2, RunFailed 1,
 * ExecutionFailed 1 = 45; plus 8 retries = 24.
 */
export const EVENTS_PER_RUN_FIXED = 69;

/** Seconds to wait before poll number `attempt` (0-based). */
export function waitSeconds(schedule: { first: number; factor: number; max: number }, attempt: number): number {
  return Math.min(schedule.max, Math.round(schedule.first * schedule.factor ** Math.min(attempt, 30)));
}

/** How many polls fit before `timeoutSeconds` has passed (the last one may land just past it). */
export function pollsWithin(schedule: { first: number; factor: number; max: number }, timeoutSeconds: number): number {
  let waited = 0;
  let polls = 0;
  while (waited < timeoutSeconds) {
    waited += waitSeconds(schedule, polls);
    polls += 1;
  }
  return polls;
}

export interface HistoryBudget {
  /** Worst-case history events of the whole run. */
  events: number;
  /** Worst-case events of one target. */
  perTarget: number;
  /** The most account-region pairs that fit the budget with these timeouts. */
  maxPairs: number;
}

export function historyBudget(pairs: number, copyTimeoutMinutes: number, verifyTimeoutMinutes: number): HistoryBudget {
  const perTarget =
    EVENTS_PER_TARGET_FIXED +
    EVENTS_PER_POLL * (pollsWithin(COPY_WAIT, copyTimeoutMinutes * 60) + pollsWithin(LAUNCH_WAIT, verifyTimeoutMinutes * 60));
  return {
    events: EVENTS_PER_RUN_FIXED + pairs * perTarget,
    perTarget,
    maxPairs: Math.floor((MAX_HISTORY_EVENTS_PER_RUN - EVENTS_PER_RUN_FIXED) / perTarget),
  };
}
