/**
 * How the two poll loops wait, how the targets are split over executions, and what that costs in execution
 * history events. The handlers compute each `waitSeconds` here; input validation refuses runs whose worst case
 * would come near Step Functions' 25,000-event limit in any execution. docs/how-it-works.md ("History budget",
 * "Waiting for a copy") walks through the same arithmetic; `npm run bench` measures it.
 */

/**
 * The copy poll loop (seconds). The first look is sized from the source's snapshot sizes; after it, the copy's
 * snapshot progress (an integer percentage) gives the earliest time the copy can be done, and the loop waits until
 * a little before it. When the copy may be done within the approach window (`approach` seconds, or the shortest wait
 * allowed if longer, up to `approachMax`), the status check itself keeps looking every `approachPoll` seconds: one
 * Lambda invocation instead of more trips round the loop. Without progress it backs off by `factor`. No wait is
 * shorter than `min` nor than `spacing` × the time since the copy started, which is what bounds the number of trips
 * (and history events) whatever the progress says.
 */
export const COPY_WAIT = {
  firstPerGiB: 15,
  firstMin: 60,
  firstMax: 600,
  min: 30,
  spacing: 0.15,
  factor: 2,
  max: 3600,
  approach: 120,
  approachMax: 600,
  approachPoll: 10,
} as const;

/**
 * The launch-check loop (seconds): the first look after `first` (instances usually boot in 30-90 s), then the check
 * keeps looking every `approachPoll` seconds for up to `approach`, then backs off by `factor` up to `max`.
 */
export const LAUNCH_WAIT = { first: 45, factor: 2, max: 120, approach: 60, approachPoll: 5 } as const;

/** Static ceilings on loop iterations, enforced by the Choice states as well (defence in depth). */
export const MAX_COPY_POLLS = 60;
export const MAX_LAUNCH_POLLS = 30;

/** Half of Step Functions' 25,000-event history limit: what any one execution may plan for at worst. */
export const MAX_HISTORY_EVENTS_PER_EXECUTION = 12_500;
/**
 * Targets (account-region pairs) in one run. A Distributed Map runs up to 10,000 child executions at once and reads
 * its items from S3, so neither the run's payloads nor its history grow with the targets; the cap is the pipeline's own.
 */
export const MAX_PAIRS_PER_RUN = 1_000;

/** History events of one trip round a poll loop: Wait (2) + Lambda Task (5) + Choice (2). */
export const EVENTS_PER_POLL = 9;
/**
 * Events of one target besides its poll loops, on the longest path (a rekey whose grant revocation fails):
 * Map iteration 2, Parallel 4, IsRekeyTarget 2, ResolveCurrentCopy 5, UseCurrentCopyAsSource 2, IsAlreadyOnNewKey 2,
 * PreflightTarget 5, CopyEncryptImage 5, IsImageAvailable 2, CreateKmsGrant 5, StartLaunchCheck 5,
 * IsLaunchVerified 2, CleanUpLaunchCheck 5, PublishImage 5, IsRekeyingTarget 2, RevokeOldGrants 5,
 * FindTargetCopy 5, CleanUpFailedTarget 5, IsLambdaErrorCause 2, ParseErrorCause 2, UseErrorMessage 2,
 * RecordTargetFailure 2 = 76; plus 8 task retries at 3 events each = 24.
 */
export const EVENTS_PER_TARGET_FIXED = 100;
/** Events of a target's child execution besides its steps: ExecutionStarted 1, PrepareTargetFailure 2, TargetFailed 1, ExecutionFailed 1. */
export const EVENTS_PER_CHILD_EXECUTION_FIXED = 5;
/**
 * Events of the run's execution, whatever its number of targets (the Distributed Map's children have their own
 * histories): ExecutionStarted 1, ResolveSource 5, IsSourceOptedIn 2, IsSharingNeeded 2, ShareSource 5,
 * DistributeTargets (entered, Map Run started and succeeded, exited) 4, IsUnshareNeeded 2, UnshareSource 5,
 * RecordManifest 5, NotifyCompletion 5, IsRunClean 2, RecordRunFailure 2, FailRun 5, ExecutionFailed 1 = 46;
 * plus 8 retries = 24. A redrive appends its own attempt (ExecutionRedriven instead of ExecutionStarted): each
 * attempt is within this count.
 */
export const EVENTS_PER_RUN_FIXED = 70;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Seconds before the first look at a new copy, from the total size of the source's snapshots. */
export function firstCopyWait(sizeGiB: number): number {
  return Math.round(clamp(sizeGiB * COPY_WAIT.firstPerGiB, COPY_WAIT.firstMin, COPY_WAIT.firstMax));
}

/**
 * The earliest the copy can be done, in seconds from now, given `elapsed` seconds since it started and an integer
 * progress percentage (the true progress is below `percent + 1`); null when progress tells nothing.
 */
export function earliestRemaining(elapsed: number, percent: number | null): number | null {
  if (percent === null || percent <= 0 || percent >= 100 || elapsed <= 0) return null;
  return Math.max(0, (elapsed * 100) / (percent + 1) - elapsed);
}

/** The shortest wait allowed `elapsed` seconds after the copy started. */
export function minCopyWait(elapsed: number): number {
  return Math.max(COPY_WAIT.min, COPY_WAIT.spacing * elapsed);
}

/** How long the status check keeps looking at a copy that may be done soon: at least as long as the next wait would be. */
export function approachWindow(elapsed: number): number {
  return clamp(minCopyWait(elapsed), COPY_WAIT.approach, COPY_WAIT.approachMax);
}

/** Should the status check keep looking itself (the copy may be done within the approach window)? */
export function copyNearlyDone(elapsed: number, percent: number | null): boolean {
  const remaining = earliestRemaining(elapsed, percent);
  return remaining !== null && remaining <= approachWindow(elapsed);
}

/**
 * Seconds until the next look at a pending copy. After a status check that kept looking through its whole approach
 * window (`approached`) and still saw the copy pending, the copy is late on its own progress: the next look comes
 * after the shortest wait (`min`), not after `spacing` × elapsed, so a late copy is still noticed within about a
 * minute. The trip that precedes such a wait lasted the approach window itself, which keeps the trips bounded.
 */
export function nextCopyWait(o: { elapsed: number; percent: number | null; previousWait: number; untilDeadline: number; approached?: boolean }): number {
  const remaining = earliestRemaining(o.elapsed, o.percent);
  const wanted = remaining !== null ? remaining - approachWindow(o.elapsed) / 2 : o.previousWait * COPY_WAIT.factor;
  const shortest = o.approached ? COPY_WAIT.min : minCopyWait(o.elapsed);
  const wait = clamp(o.approached ? shortest : wanted, shortest, COPY_WAIT.max);
  // Never sleep far past the deadline: the loop's Choice then ends it on time.
  return Math.ceil(Math.max(1, Math.min(wait, o.untilDeadline + 1)));
}

/** Seconds until look number `attempt` (0-based) at a test instance. */
export function launchWait(attempt: number): number {
  return Math.min(LAUNCH_WAIT.max, Math.round(LAUNCH_WAIT.first * LAUNCH_WAIT.factor ** Math.min(attempt, 30)));
}

/**
 * The most trips round the copy loop before `timeoutSeconds`: every trip as short as allowed, either a wait of
 * `spacing` × elapsed or, after a whole approach window spent looking, that window plus the shortest wait.
 */
export function copyPollsWithin(timeoutSeconds: number): number {
  let t = COPY_WAIT.firstMin;
  let polls = 1;
  while (t < timeoutSeconds && polls < MAX_COPY_POLLS) {
    t += Math.min(Math.ceil(minCopyWait(t)), approachWindow(t) + COPY_WAIT.min);
    polls += 1;
  }
  return polls;
}

/** The most trips round the launch loop before `timeoutSeconds`. */
export function launchPollsWithin(timeoutSeconds: number): number {
  let t = 0;
  let polls = 0;
  while (t < timeoutSeconds && polls < MAX_LAUNCH_POLLS) {
    t += launchWait(polls);
    polls += 1;
  }
  return polls;
}

export interface HistoryBudget {
  /** Worst-case events of one target: its child execution's history. */
  perTarget: number;
  /** Worst-case events of the run's own execution. */
  parentEvents: number;
  /** Targets running at once (the Distributed Map's MaxConcurrency; 0 there means no limit). */
  running: number;
  /** The most account-region pairs one run may hold. */
  maxPairs: number;
}

/**
 * The worst-case history of each execution of a run: every target is its own child execution of the Distributed
 * Map, so a target's history depends only on its timeouts, and the run's on nothing the targets change.
 */
export function historyBudget(pairs: number, copyTimeoutMinutes: number, verifyTimeoutMinutes: number, maxConcurrency: number | null = null): HistoryBudget {
  const perTarget =
    EVENTS_PER_CHILD_EXECUTION_FIXED +
    EVENTS_PER_TARGET_FIXED +
    EVENTS_PER_POLL * (copyPollsWithin(copyTimeoutMinutes * 60) + launchPollsWithin(verifyTimeoutMinutes * 60));
  return {
    perTarget,
    parentEvents: EVENTS_PER_RUN_FIXED,
    running: Math.max(1, Math.min(pairs, maxConcurrency ?? pairs)),
    maxPairs: MAX_PAIRS_PER_RUN,
  };
}
