/**
 * Where each (account, region) target of a run is, derived from the states it enters: the same normalized
 * event whether it came from the local runner's event log or from a deployed execution's history.
 */
import { inputSchema } from '../functions/shared/input';
import type { Manifest } from '../functions/shared/manifest-schema';
import { targetPairs } from '../functions/shared/plan';

export type Phase = 'queued' | 'checking' | 'copying' | 'granting' | 'verifying' | 'publishing' | 'done' | 'failed';

/** A state entered (with its input) or exited (with its output), at `at` ms since the epoch. */
export interface StateEvent {
  kind: 'entered' | 'exited';
  stateName: string;
  input?: unknown;
  output?: unknown;
  at?: number;
}

export interface TargetKey {
  accountId: string;
  region: string;
}

export interface TargetProgress extends TargetKey {
  phase: Phase;
  /** When the target's first state was entered. */
  startedAt: number | null;
  /** When it reached done or failed. */
  endedAt: number | null;
  /** The error name of a failed target, once known. */
  error: string | null;
}

/** A stage the run entered, or a target's new phase (a copy, as of `at`). */
export interface Change {
  stage?: string;
  target?: TargetProgress;
  at?: number;
}

/** A target's phase, by the per-target state it entered (test/statemachine/contract.test.ts: every such state has one). */
export const PHASE_OF_STATE: Record<string, Phase> = {
  IsRekeyTarget: 'checking',
  ResolveCurrentCopy: 'checking',
  UseCurrentCopyAsSource: 'checking',
  IsAlreadyOnNewKey: 'checking',
  KeepCurrentCopy: 'checking',
  PreflightTarget: 'checking',
  CopyEncryptImage: 'copying',
  WaitForImage: 'copying',
  GetImageState: 'copying',
  IsImageAvailable: 'copying',
  CreateKmsGrant: 'granting',
  StartLaunchCheck: 'verifying',
  WaitForLaunch: 'verifying',
  GetLaunchState: 'verifying',
  IsLaunchVerified: 'verifying',
  CleanUpLaunchCheck: 'verifying',
  PublishImage: 'publishing',
  IsRekeyingTarget: 'publishing',
  RevokeOldGrants: 'publishing',
  ApplyRetention: 'publishing',
  RecordRetentionFailure: 'publishing',
  RecordTargetSuccess: 'publishing',
  ImageCopyTimedOut: 'failed',
  LaunchCheckTimedOut: 'failed',
  FindTargetCopy: 'failed',
  NoCopyFound: 'failed',
  CleanUpFailedTarget: 'failed',
  IsCleanupErrorFromLambda: 'failed',
  ParseCleanupErrorCause: 'failed',
  RecordLambdaCleanupError: 'failed',
  RecordCleanupError: 'failed',
  IsLambdaErrorCause: 'failed',
  ParseErrorCause: 'failed',
  UseErrorMessage: 'failed',
  IsCopyRecorded: 'failed',
  UseFoundCopy: 'failed',
  RecordTargetFailure: 'failed',
  PrepareTargetFailure: 'failed',
  TargetFailed: 'failed',
};

/** What the run as a whole is doing, by the top-level state it entered. */
export const STAGE_OF_STATE: Record<string, string> = {
  ResolveSource: 'resolving the source image',
  IsInputInvalid: 'resolving the source image',
  IsSourceOptedIn: 'resolving the source image',
  IsSharingNeeded: 'sharing the source with the targets',
  ShareSource: 'sharing the source with the targets',
  DistributeTargets: 'copying to the targets',
  IsUnshareNeeded: 'revoking the source share',
  NothingToUnshare: 'revoking the source share',
  UnshareSource: 'revoking the source share',
  RecordUnshareFailure: 'revoking the source share',
  UnshareAfterFailure: 'revoking the source share after a failure',
  RecordManifest: 'writing the manifest',
  ManifestNotRecorded: 'writing the manifest',
  NotifyCompletion: 'sending the completion event',
  IsRunClean: 'sending the completion event',
  RunSucceeded: 'succeeded',
  RecordRunFailure: 'failed',
  FailRun: 'failed (a redrive retries what failed)',
  HasTargetsToRetry: 'redriven: retrying what failed',
  UseRetryTargets: 'redriven: retrying what failed',
  UseRetryShare: 'redriven: retrying what failed',
  ReportRunError: 'stopping: the run failed before or while fanning out',
  NotifyRunError: 'stopping: the run failed before or while fanning out',
  RunStopped: 'stopped',
  SourceNotOptedIn: 'skipped: the source does not carry the opt-in tag, or the run has no target account',
};

const FINAL: ReadonlySet<Phase> = new Set(['done', 'failed']);

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The target a per-target state works on: `item.target` of its input, or the account and region of a result line. */
export function targetOf(value: unknown): TargetKey | undefined {
  const v = record(value);
  const candidate = record(record(record(v?.item)?.target)) ?? v;
  const accountId = candidate?.accountId;
  const region = candidate?.region;
  return typeof accountId === 'string' && typeof region === 'string' ? { accountId, region } : undefined;
}

/** The (account, region) pairs a run's input names (none when it is not a valid input: its targets are then added as seen). */
export function targetsOfInput(raw: unknown): TargetKey[] {
  const input = inputSchema.safeParse(raw);
  return input.success ? targetPairs(input.data).map(({ accountId, region }) => ({ accountId, region })) : [];
}

function errorName(event: StateEvent): string | null {
  const input = record(event.input);
  const fromCatch = record(input?.error)?.Error;
  const fromResult = record(record(event.output)?.error)?.name;
  const name = fromResult ?? fromCatch;
  return typeof name === 'string' ? name : null;
}

export class ProgressTracker {
  private readonly byKey = new Map<string, TargetProgress>();
  /** What the run as a whole is doing. */
  stage = 'starting';
  /** When the run started (for the header's clock). */
  startedAt: number;

  constructor(targets: TargetKey[] = [], private readonly now: () => number = Date.now) {
    this.startedAt = now();
    this.addTargets(targets);
  }

  /** Targets known before their first event (queued). */
  addTargets(targets: TargetKey[]): void {
    for (const t of targets) this.ensure(t);
  }

  private ensure(t: TargetKey): TargetProgress {
    const key = `${t.accountId}/${t.region}`;
    let target = this.byKey.get(key);
    if (!target) {
      target = { accountId: t.accountId, region: t.region, phase: 'queued', startedAt: null, endedAt: null, error: null };
      this.byKey.set(key, target);
    }
    return target;
  }

  /**
   * A finished target stays finished, except that a failed one runs again when a redrive retries it (its states enter
   * again) and the manifest, the final word, sets every target.
   */
  private move(target: TargetProgress, phase: Phase, at: number, final = false): boolean {
    if (target.phase === phase) return false;
    if (!final && (target.phase === 'done' || (target.phase === 'failed' && FINAL.has(phase)))) return false;
    target.phase = phase;
    if (FINAL.has(phase)) target.endedAt = at;
    else target.endedAt = null;
    return true;
  }

  /** Apply one event; returns what changed, if anything. */
  apply(event: StateEvent): Change | undefined {
    const at = event.at ?? this.now();
    const stage = event.kind === 'entered' ? STAGE_OF_STATE[event.stateName] : undefined;
    if (stage && stage !== this.stage) {
      this.stage = stage;
      return { stage };
    }
    const key = targetOf(event.kind === 'entered' ? event.input : (event.output ?? event.input));
    if (!key) return undefined;
    const target = this.ensure(key);
    target.startedAt ??= at;
    let phase: Phase | undefined;
    if (event.kind === 'entered') phase = PHASE_OF_STATE[event.stateName];
    else if (event.stateName === 'RecordTargetSuccess' && record(event.output)?.status === 'succeeded') phase = 'done';
    else if (event.stateName === 'RecordTargetFailure') phase = 'failed';
    if (phase === 'failed') target.error = errorName(event) ?? target.error;
    return phase && this.move(target, phase, at) ? { target: { ...target }, at } : undefined;
  }

  /** The manifest is the final word on every target. */
  applyManifest(manifest: Manifest): Change[] {
    const at = this.now();
    const changes: Change[] = [];
    for (const result of manifest.results) {
      const target = this.ensure(result);
      target.startedAt ??= at;
      if (result.error) target.error = result.error.name;
      if (this.move(target, result.status === 'succeeded' ? 'done' : 'failed', at, true)) changes.push({ target: { ...target }, at });
    }
    return changes;
  }

  targets(): TargetProgress[] {
    return [...this.byKey.values()];
  }

  /** Finished (done or failed) and total targets. */
  counts(): { finished: number; done: number; failed: number; total: number } {
    const all = this.targets();
    const done = all.filter((t) => t.phase === 'done').length;
    const failed = all.filter((t) => t.phase === 'failed').length;
    return { finished: done + failed, done, failed, total: all.length };
  }

  /** Milliseconds a target has been (or was) in progress; 0 while queued. */
  elapsed(target: TargetProgress, now = this.now()): number {
    if (target.startedAt === null) return 0;
    return Math.max(0, (target.endedAt ?? now) - target.startedAt);
  }
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}
