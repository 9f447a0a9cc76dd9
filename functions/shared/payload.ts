/**
 * The worst-case size of every payload a run carries, for an input, against the AWS limit each one meets
 * (docs/limits.md cites them). Validation refuses an input whose worst case does not fit, before any AWS call,
 * naming the payload and the limit. The shapes below follow the current definitions (statemachine/*.asl.yml) state
 * by state: change the fan-out, change `SHAPES` with it. Values only known at run time take their longest form
 * (`WORST`); two of them are assumptions, not AWS limits, and docs/limits.md says so.
 */
import { LAMBDA_SERVICE_ERROR_NAMES, RETRYABLE_ERROR_NAMES, STATE_MACHINE_ERROR_NAMES, TERMINAL_ERROR_NAMES } from './errors';
import type { PipelineInput } from './input';
import type { OuExpansion } from './manifest-schema';
import { MAX_USER_TAGS } from './tags';
import { MAX_FAILED_LINES, summaryShare, summarySource } from './manifest';
import type { RunSummary } from './manifest-schema';
import { regionPairs, settingsOf, targetPairs, type ResolvedSource, type RunPlan, type Settings, type TargetPair } from './plan';
import { runFiles } from './run-store';

/** Step Functions: execution input, a state's input and output, a Task's result (UTF-8 bytes). */
export const STATE_PAYLOAD_BYTES = 262_144;
/** Step Functions: a failure's cause (characters). */
export const FAILURE_CAUSE_CHARS = 32_768;

const ERROR_NAMES = [...RETRYABLE_ERROR_NAMES, ...TERMINAL_ERROR_NAMES, ...STATE_MACHINE_ERROR_NAMES, ...LAMBDA_SERVICE_ERROR_NAMES, 'States.DataLimitExceeded', 'States.ExceedToleratedFailureThreshold', 'States.ItemReaderFailed', 'States.ResultWriterFailed'];
const longest = (names: readonly string[]) => names.reduce((a, b) => (b.length > a.length ? b : a), '');
const hex = (n: number) => '0'.repeat(n);

/** Run-time values at their longest. */
export const WORST = {
  /** Step Functions caps execution names at 80 characters. */
  executionName: 'x'.repeat(80),
  imageId: `ami-${hex(17)}`,
  snapshotId: `snap-${hex(17)}`,
  instanceId: `i-${hex(17)}`,
  /** EC2 image names: at most 128 characters. */
  imageName: 'n'.repeat(128),
  /** KMS grant IDs: at most 128 characters. */
  grantId: hex(128),
  errorName: longest(ERROR_NAMES),
  /** Assumption: EBS snapshots of one source image (block device mappings with a snapshot). */
  snapshotsPerImage: 8,
  /** Assumption: characters of one error message kept in a failed target's full line. */
  errorMessageChars: 2_048,
  /** A key ARN in the longest partition, with a multi-Region key ID. */
  keyArn: (region: string, accountId: string) => `arn:aws-us-gov:kms:${region}:${accountId}:key/mrk-${hex(32)}`,
  /** S3 bucket names: at most 63 characters. */
  bucket: 'b'.repeat(63),
  uuid: '00000000-0000-0000-0000-000000000000',
  /** A Map Run ARN: the state machine's name (80) and the Map's label (at most 40) before the run's ID. */
  mapRunArn: `arn:aws-us-gov:states:us-gov-west-1:123456789012:mapRun:${'s'.repeat(80)}/${'l'.repeat(40)}:00000000-0000-0000-0000-000000000000`,
  /** An execution ARN of a state machine whose name is as long as allowed (80). */
  executionArn: (name: string) => `arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:${'s'.repeat(80)}:${name}`,
};

/** One payload at its worst, against its limit. */
export interface PayloadSize {
  /** What it is and where it is carried, e.g. "ReportPartial's output (the run's execution)". */
  payload: string;
  size: number;
  unit: 'bytes' | 'characters';
  limit: number;
  /** The limit's name as AWS documents it. */
  limitName: string;
}

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

function worstSourceTags(input: PipelineInput): Record<string, string> {
  const wanted = input.copy.copySourceTags;
  const count = wanted === false ? 0 : wanted === true ? MAX_USER_TAGS : wanted.length;
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`${String(i).padStart(3, '0')}${'k'.repeat(125)}`, 'v'.repeat(256)]));
}

/** The source as ResolveSource records it, at its longest: every target account already had its permissions. */
function worstSource(input: PipelineInput, shareAccountIds: string[]): ResolvedSource | null {
  if (input.mode === 'rekey' || input.source === undefined) return null;
  const snapshotIds = Array.from({ length: WORST.snapshotsPerImage }, () => WORST.snapshotId);
  return {
    imageId: WORST.imageId,
    region: input.source.region,
    accountId: '123456789012',
    name: WORST.imageName,
    architecture: 'x86_64_mac',
    rootDeviceName: '/dev/sda1',
    snapshotIds,
    sizeGiB: 65_536,
    // copy.copySourceTags: the source's tags ride in the item; at worst every key and value at EC2's 128 and 256 characters.
    tags: worstSourceTags(input),
    preexistingShares: { launchPermission: shareAccountIds, createVolumePermission: Object.fromEntries(snapshotIds.map((s, i) => [`${s}${i}`, shareAccountIds])) },
  };
}

/** A target's short line, failed (the longer form). */
const worstLine = (t: TargetPair) => ({ accountId: t.accountId, region: t.region, status: 'failed', error: WORST.errorName });

/** A target's full line (its child execution's output, or the cause it fails with): the longer of its succeeded and failed forms. */
function worstResult(t: TargetPair, settings: Settings): unknown {
  const keyArn = WORST.keyArn(t.region, t.accountId);
  const failed = {
    accountId: t.accountId,
    region: t.region,
    status: 'failed',
    imageId: WORST.imageId,
    kmsKeyArn: keyArn,
    grantId: null,
    launchCheck: { mode: settings.verify.mode, instanceId: null, state: 'not-verified' },
    cleanup: { instanceId: WORST.instanceId, terminated: true, autoScalingGroup: `ami-pipeline-verify-${hex(20)}`, launchTemplate: `ami-pipeline-verify-${hex(20)}` },
    error: { name: WORST.errorName, message: 'm'.repeat(WORST.errorMessageChars) },
    line: worstLine(t),
  };
  const parameterName = settings.publish.parameterName?.replace(/\{[^}]*\}/g, WORST.imageName) ?? null;
  const succeeded = {
    ...failed,
    status: 'succeeded',
    grantId: WORST.grantId,
    launchCheck: { mode: settings.verify.mode, instanceId: WORST.instanceId, state: 'running' },
    cleanup: undefined,
    publish: {
      parameterName,
      parameterVersion: 100_000,
      lineage: settings.retention.lineage ?? parameterName,
      launchTemplates: settings.publish.launchTemplates.map((name) => ({ name, version: 1_000_000, changed: true })),
    },
    retention: {
      lineage: settings.retention.lineage ?? parameterName,
      keep: settings.retention.keep,
      dryRun: settings.retention.dryRun,
      skipped: null,
      kept: Array.from({ length: settings.retention.keep }, () => ({ imageId: WORST.imageId, reason: 'newest' })),
      retired: Array.from({ length: 10 }, () => ({ imageId: WORST.imageId, snapshotIds: Array.from({ length: WORST.snapshotsPerImage }, () => WORST.snapshotId) })),
    },
    error: null,
  };
  return bytes(succeeded) >= bytes(failed) ? succeeded : failed;
}

/** Results of the steps a target runs that its full line does not repeat (preflight, copy, grant, launch checks). */
const STEP_RESULTS_BYTES = 4_096;
/** Stack frames a thrown error's trace carries at most (the Lambda error's `trace` after its first line), and their length. */
const TRACE_FRAMES = 20;
const TRACE_FRAME_CHARS = 150;

/**
 * A Lambda function's error as Step Functions gets it for its cause: `{ errorType, errorMessage, trace }`, the trace
 * being the error's stack, whose first line is "Name: message" ("AWS Lambda function errors in Node.js"): the message
 * is there twice.
 */
export function lambdaErrorCause(name: string, message: string) {
  return { errorType: name, errorMessage: message, trace: [`${name}: ${message}`, ...Array.from({ length: TRACE_FRAMES }, () => `    at ${'x'.repeat(TRACE_FRAME_CHARS - 7)}`)] };
}

/** The source share as UnshareSource returns it: every account and snapshot of the run. */
function worstShare(plan: RunPlan) {
  return { revoked: true, accountIds: plan.shareAccountIds, snapshotIds: plan.source?.snapshotIds ?? [], executions: [] as string[], left: [] };
}

/** The payloads of the current design: the run's execution, and one child execution per target (the Distributed Map). */
export const SHAPES = {
  plan(input: PipelineInput, executionName: string, organization: OuExpansion[] = []): RunPlan {
    const targets = targetPairs(input);
    const shareAccountIds = [...new Set(targets.map((t) => t.accountId))];
    return {
      executionName,
      skipped: false,
      skipReason: null,
      source: worstSource(input, shareAccountIds),
      shareAccountIds,
      targetCount: targets.length,
      maxConcurrency: input.maxConcurrency ?? 0,
      files: runFiles(WORST.bucket, executionName),
      settings: settingsOf(input),
      notify: { topicArn: input.notify.topicArn ?? null },
      // Organizational units are expanded at run time: ResolveSource checks again with what they expanded to.
      organization,
    };
  },
  /** The run's state once the Map Run is done (DistributeTargets' output): the share and where ResultWriter wrote. */
  afterMap(plan: RunPlan) {
    const snapshotIds = plan.source?.snapshotIds ?? [];
    return {
      ...plan,
      share: { action: 'share', imageId: WORST.imageId, accountIds: plan.shareAccountIds, snapshotIds, imageGone: false },
      mapRun: { MapRunArn: WORST.mapRunArn, ResultWriterDetails: { Bucket: plan.files.bucket, Key: `${plan.files.resultsPrefix}/${WORST.uuid}/manifest.json` } },
    };
  },
  /** The run's summary (RecordManifest's result): the execution's output, and the message of FailRun's RunFailedError. */
  summary(plan: RunPlan): RunSummary {
    const failed = targetLines(plan).slice(0, MAX_FAILED_LINES);
    return {
      status: 'PARTIAL',
      executionName: plan.executionName,
      source: summarySource(plan.source),
      sourceShare: summaryShare(worstShare(plan)),
      counts: { targets: plan.targetCount, succeeded: plan.targetCount, failed: plan.targetCount },
      failed,
      manifest: { bucket: plan.files.bucket, key: plan.files.manifestKey, uri: `s3://${plan.files.bucket}/${plan.files.manifestKey}` },
      mapRunArn: WORST.mapRunArn,
    };
  },
  /** The run's state after RecordManifest (NotifyCompletion's input, the largest of the run's execution). */
  afterReport(plan: RunPlan) {
    return { ...SHAPES.afterMap(plan), unshare: worstShare(plan), manifest: SHAPES.summary(plan) };
  },
  /** A child execution's input (ItemSelector's output, a Map iteration's input). */
  childInput(plan: RunPlan, target: TargetPair) {
    return {
      item: { executionName: plan.executionName, source: plan.source, settings: plan.settings, target },
      copy: { imageId: null, kmsKeyArn: null },
      grant: { grantId: null },
      launch: { instanceId: null },
    };
  },
  /** A target's state in its child execution: its item, the step results and its full line. */
  targetState(plan: RunPlan, target: TargetPair) {
    return { ...SHAPES.childInput(plan, target), steps: 'x'.repeat(STEP_RESULTS_BYTES), result: worstResult(target, plan.settings) };
  },
};

/** The failed lines the summary lists, at their longest (a target's own line never carries more than its error's name). */
function targetLines(plan: RunPlan) {
  return Array.from({ length: plan.targetCount }, () => ({ accountId: '123456789012', organizationalUnitId: `ou-${'x'.repeat(4)}-${'y'.repeat(32)}`, region: 'ap-southeast-4', status: 'failed' as const, error: WORST.errorName }));
}

/** Every payload of a run of this input at its worst, each with its limit. */
/**
 * Every payload of a run of `input` at its worst. `organization` is what the input's organizationalUnitId entries
 * expanded to (ResolveSource knows it; validation before the run does not, and models the listed accounts only).
 */
export function worstCasePayloads(input: PipelineInput, executionName = WORST.executionName, organization: OuExpansion[] = []): PayloadSize[] {
  const plan = SHAPES.plan(input, executionName, organization);
  const state = (payload: string, value: unknown): PayloadSize => ({ payload, size: bytes(value), unit: 'bytes', limit: STATE_PAYLOAD_BYTES, limitName: "Step Functions' maximum input or output size for a task, state or execution" });
  const cause = (payload: string, value: unknown): PayloadSize => ({ payload, size: JSON.stringify(value).length, unit: 'characters', limit: FAILURE_CAUSE_CHARS, limitName: "Step Functions' maximum length of a failure's cause" });
  // The target with the longest key reference and subnet has the largest child payloads.
  const target = [...targetPairs(input)].sort((a, b) => b.kmsKey.length + (b.subnetId?.length ?? 0) - a.kmsKey.length - (a.subnetId?.length ?? 0))[0];
  const out: PayloadSize[] = [
    state("ResolveSource's output (the run's execution)", plan),
    state("DistributeTargets' output (the run's execution)", SHAPES.afterMap(plan)),
    state("RecordManifest's output (the run's execution)", SHAPES.afterReport(plan)),
    cause("RunFailedError's cause (FailRun's error: the run's summary as its message)", lambdaErrorCause('RunFailedError', JSON.stringify(SHAPES.summary(plan)))),
  ];
  if (target) {
    out.push(
      state("a child execution's input (a Map iteration's input)", SHAPES.childInput(plan, target)),
      state("a target's state (its child execution)", SHAPES.targetState(plan, target)),
      cause("TargetFailed's cause (a failed target's line)", worstResult(target, plan.settings)),
    );
  }
  return out;
}

/** The payloads that do not fit, worst first. */
export function payloadsOverLimit(input: PipelineInput, executionName?: string, organization: OuExpansion[] = []): PayloadSize[] {
  return worstCasePayloads(input, executionName, organization)
    .filter((p) => p.size > p.limit)
    .sort((a, b) => b.size / b.limit - a.size / a.limit);
}

/** The largest number of the input's first account-region pairs whose worst case fits (0 when none does). */
export function mostPairsThatFit(input: PipelineInput, organization: OuExpansion[] = []): number {
  const pairs = regionPairs(input.targets ?? []);
  const first = (n: number): PipelineInput => {
    const keep = pairs.slice(0, n);
    const targets = (input.targets ?? [])
      .map((t, i) => ({ ...t, regions: keep.filter((p) => p.index === i).map((p) => p.region) }))
      .filter((t) => t.regions.length > 0);
    return { ...input, targets };
  };
  let lo = 0;
  let hi = pairs.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (payloadsOverLimit(first(mid), undefined, organization).length === 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
