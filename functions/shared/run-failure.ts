/**
 * How a run ends when it did not succeed, and how it is redriven (docs/fanout.md, "Redrive"). FailRun, the run's last
 * state when a target failed or the source share stayed, fails the execution with RunFailedError on the attempt that
 * decided the failure; redriven (RedriveExecution resumes at FailRun with `$$.Execution.RedriveCount` one higher), it
 * plans the retry instead: the targets that did not succeed, written as a new targets file for the Distributed Map, and
 * the accounts the source must be shared with again for them. A redrive thus reruns only what failed.
 */
import { parseJson } from './json';
import { looksLikeRunSummary, storedResults, type RunSummary } from './manifest-schema';
import type { RunFiles, TargetPair } from './plan';
import { readTargets, type RunStore } from './run-store';

export const RUN_FAILED_ERROR = 'RunFailedError';

/** The retry a redriven FailRun plans. */
export interface RetryPlan {
  /** The redrive it plans for. */
  redriveCount: number;
  /** Targets that run again (0: only the unshare, or the manifest, is retried). */
  targetCount: number;
  /** The run's files, `targetsKey` naming the retry's targets file and `retry` the redrive, when targets run again. */
  files: RunFiles & { retry?: number };
  /** Accounts ShareSource shares the source with for the retry. */
  shareAccountIds: string[];
}

export interface RetryInput {
  redriveCount: number;
  summary: RunSummary;
  files: RunFiles & { retry?: number };
  shareAccountIds: string[];
  /** UnshareSource's result on the attempt that failed. */
  sourceShare: { revoked: boolean };
}

const key = (t: { accountId: string; region: string }) => `${t.accountId}/${t.region}`;

/**
 * The retry of a failed run: every target of the last Map Run's targets file whose manifest line did not succeed (a
 * line missing counts as not succeeded), written to `<prefix>/retry-<redrive>.json`. The source is shared again with
 * those targets' accounts; with all of the run's accounts when the last unshare did not revoke its claim, so that the
 * claim the retry writes covers every permission still given (the ledger keeps one claim per execution).
 */
export async function planRetry(input: RetryInput, store: RunStore): Promise<RetryPlan> {
  const none: RetryPlan = { redriveCount: input.redriveCount, targetCount: 0, files: input.files, shareAccountIds: input.shareAccountIds };
  const location = input.summary.manifest;
  // No manifest was written (RecordManifest failed): the retry records it again from the last Map Run's results.
  if (!location) return none;
  const manifest = await store.getJson(location.bucket, location.key);
  const succeeded = new Set(storedResults(manifest).filter((r) => r.status === 'succeeded').map(key));
  const targets: TargetPair[] = (await readTargets(input.files, store)).filter((t) => !succeeded.has(key(t)));
  if (targets.length === 0) return none;
  const targetsKey = `${input.files.prefix}/retry-${input.redriveCount}.json`;
  await store.putJson(input.files.bucket, targetsKey, targets);
  const shared = new Set(input.shareAccountIds);
  const accounts = input.sourceShare.revoked ? [...new Set(targets.map((t) => t.accountId))].filter((a) => shared.has(a)) : input.shareAccountIds;
  return { redriveCount: input.redriveCount, targetCount: targets.length, files: { ...input.files, targetsKey, retry: input.redriveCount }, shareAccountIds: accounts };
}

/**
 * What a RunFailedError cause carries as the run's summary: FailRun's Lambda error (`{ errorType, errorMessage,
 * trace }`) has it as errorMessage; a Fail state's cause (runs before FailRun) was the summary itself. Unchecked: the
 * reader checks it against runSummarySchema. Undefined when the cause is not JSON.
 */
export function runFailureSummary(cause: string | undefined): unknown {
  const outer = parseJson(cause);
  if (looksLikeRunSummary(outer)) return outer;
  const message = (outer as { errorMessage?: unknown } | undefined)?.errorMessage;
  return typeof message === 'string' ? parseJson(message) : undefined;
}
