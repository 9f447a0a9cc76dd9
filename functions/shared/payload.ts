/**
 * The worst-case size of every payload a run carries, for an input, against the AWS limit each one meets
 * (docs/limits.md cites them). Validation refuses an input whose worst case does not fit, before any AWS call,
 * naming the payload and the limit. The shapes below follow the current definitions (statemachine/*.asl.yml) state
 * by state: change the fan-out, change `SHAPES` with it. Values only known at run time take their longest form
 * (`WORST`); two of them are assumptions, not AWS limits, and docs/limits.md says so.
 */
import { historyBudget } from './budget';
import { LAMBDA_SERVICE_ERROR_NAMES, RETRYABLE_ERROR_NAMES, START_EXECUTION_ERROR_NAMES, STATE_MACHINE_ERROR_NAMES, TERMINAL_ERROR_NAMES } from './errors';
import type { PipelineInput } from './input';
import { MAX_USER_TAGS } from './tags';
import { batchesOf, settingsOf, targetPairs, type Batch, type ResolvedSource, type RunPlan, type Settings, type TargetPair } from './plan';

/** Step Functions: execution input, a state's input and output, a Task's result (UTF-8 bytes). */
export const STATE_PAYLOAD_BYTES = 262_144;
/** Step Functions: a failure's cause (characters). */
export const FAILURE_CAUSE_CHARS = 32_768;

const ERROR_NAMES = [...RETRYABLE_ERROR_NAMES, ...TERMINAL_ERROR_NAMES, ...STATE_MACHINE_ERROR_NAMES, ...START_EXECUTION_ERROR_NAMES, ...LAMBDA_SERVICE_ERROR_NAMES, 'States.DataLimitExceeded'];
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

/** A target's full line in its batch's output: the longer of its succeeded and failed forms. */
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

/** The payloads of the current design (a parent execution over batch executions), from the input's plan. */
export const SHAPES = {
  plan(input: PipelineInput, executionName: string): RunPlan {
    const targets = targetPairs(input);
    const budget = historyBudget(targets.length, input.copy.timeoutMinutes, input.verify.timeoutMinutes, input.maxConcurrency ?? null);
    const shareAccountIds = [...new Set(targets.map((t) => t.accountId))];
    return {
      executionName,
      skipped: false,
      skipReason: null,
      source: worstSource(input, shareAccountIds),
      shareAccountIds,
      batches: batchesOf(executionName, targets, budget.batchSize),
      runningBatches: budget.runningBatches,
      perBatchConcurrency: budget.perBatchConcurrency,
      settings: settingsOf(input),
      notify: { topicArn: input.notify.topicArn ?? null },
      // Organizational units are expanded at run time (ResolveSource); only the listed accounts are modelled.
      organization: [],
    };
  },
  /** RunBatch's input: one batch execution's input. */
  batchInput(plan: RunPlan, batch: Batch) {
    return {
      executionName: plan.executionName,
      source: plan.source,
      settings: plan.settings,
      maxConcurrency: plan.perBatchConcurrency,
      batch: batch.index,
      targets: batch.targets,
      AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: WORST.executionArn(plan.executionName),
    };
  },
  /** DistributeBatch's output inside the batch execution: its input and every target's full line. */
  batchMapOutput(plan: RunPlan, batch: Batch) {
    return { ...SHAPES.batchInput(plan, batch), results: batch.targets.map((t) => worstResult(t, plan.settings)) };
  },
  /** The batch execution's output (SummarizeBatch). */
  batchOutput(plan: RunPlan, batch: Batch) {
    return { batch: batch.index, lines: batch.targets.map(worstLine), results: batch.targets.map((t) => worstResult(t, plan.settings)) };
  },
  /** RunBatch's result before its ResultSelector: DescribeExecution's answer, with the batch's input and output. */
  runBatchResult(plan: RunPlan, batch: Batch) {
    const arn = WORST.executionArn(batch.name);
    return { ExecutionArn: arn, Name: batch.name, StateMachineArn: arn, Status: 'SUCCEEDED', StartDate: 0, StopDate: 0, Input: SHAPES.batchInput(plan, batch), Output: SHAPES.batchOutput(plan, batch) };
  },
  /** A target's state in its batch execution: its item, the step results and its full line. */
  targetState(plan: RunPlan, target: TargetPair) {
    return { item: { executionName: plan.executionName, source: plan.source, target, settings: plan.settings }, steps: 'x'.repeat(STEP_RESULTS_BYTES), result: worstResult(target, plan.settings) };
  },
  /** The run's state once the batches are back (DistributeBatches' output). */
  afterBatches(plan: RunPlan) {
    const snapshotIds = plan.source?.snapshotIds ?? [];
    return {
      ...plan,
      share: { action: 'share', imageId: WORST.imageId, accountIds: plan.shareAccountIds, snapshotIds, imageGone: false },
      batchResults: plan.batches.map((b) => ({ executionArn: WORST.executionArn(b.name), lines: b.targets.map(worstLine) })),
    };
  },
  /** The run's summary (Report* states): the execution's output, or the cause of RunFailedError. */
  manifest(plan: RunPlan) {
    return {
      status: 'PARTIAL',
      executionName: plan.executionName,
      source: plan.source,
      sourceShare: { revoked: true, accountIds: plan.shareAccountIds, snapshotIds: plan.source?.snapshotIds ?? [] },
      targets: plan.batches.flatMap((b) => b.targets.map(worstLine)),
      batches: plan.batches.map((b) => WORST.executionArn(b.name)),
    };
  },
  /** The run's state after ReportPartial (NotifyCompletion's input and the largest of the run's execution). */
  afterReport(plan: RunPlan) {
    const after = SHAPES.afterBatches(plan);
    return { ...after, unshare: SHAPES.manifest(plan).sourceShare, outcome: { anyFailed: true, anySucceeded: true }, manifest: SHAPES.manifest(plan) };
  },
};

/** Every payload of a run of this input at its worst, each with its limit. */
export function worstCasePayloads(input: PipelineInput, executionName = WORST.executionName): PayloadSize[] {
  const plan = SHAPES.plan(input, executionName);
  const state = (payload: string, value: unknown): PayloadSize => ({ payload, size: bytes(value), unit: 'bytes', limit: STATE_PAYLOAD_BYTES, limitName: "Step Functions' maximum input or output size for a task, state or execution" });
  // The first batch is the largest (batches are filled in order); its first target has the longest key reference of it, near enough.
  const batch = plan.batches[0] ?? { index: 0, name: executionName, targets: [] };
  const target = [...plan.batches.flatMap((b) => b.targets)].sort((a, b) => b.kmsKey.length + (b.subnetId?.length ?? 0) - a.kmsKey.length - (a.subnetId?.length ?? 0))[0];
  const out: PayloadSize[] = [
    state("ResolveSource's output (the run's execution)", plan),
    state("DistributeBatches' output (the run's execution)", SHAPES.afterBatches(plan)),
    state("ReportPartial's output (the run's execution)", SHAPES.afterReport(plan)),
    state('RunBatch\'s input (a batch execution\'s input)', SHAPES.batchInput(plan, batch)),
    state('RunBatch\'s result (DescribeExecution of a batch execution)', SHAPES.runBatchResult(plan, batch)),
    state("DistributeBatch's output (a batch execution)", SHAPES.batchMapOutput(plan, batch)),
    {
      payload: "RunFailedError's cause (the run's summary)",
      size: JSON.stringify(SHAPES.manifest(plan)).length,
      unit: 'characters',
      limit: FAILURE_CAUSE_CHARS,
      limitName: "Step Functions' maximum length of a failure's cause",
    },
  ];
  if (target) out.push(state("a target's state (a batch execution's Map iteration)", SHAPES.targetState(plan, target)));
  return out;
}

/** The payloads that do not fit, worst first. */
export function payloadsOverLimit(input: PipelineInput, executionName?: string): PayloadSize[] {
  return worstCasePayloads(input, executionName)
    .filter((p) => p.size > p.limit)
    .sort((a, b) => b.size / b.limit - a.size / a.limit);
}

/** The largest number of the input's first account-region pairs whose worst case fits (0 when none does). */
export function mostPairsThatFit(input: PipelineInput): number {
  const pairs = (input.targets ?? []).flatMap((t, i) => t.regions.map((r) => ({ i, r })));
  const first = (n: number): PipelineInput => {
    const keep = pairs.slice(0, n);
    const targets = (input.targets ?? [])
      .map((t, i) => ({ ...t, regions: keep.filter((p) => p.i === i).map((p) => p.r) }))
      .filter((t) => t.regions.length > 0);
    return { ...input, targets };
  };
  let lo = 0;
  let hi = pairs.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (payloadsOverLimit(first(mid)).length === 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
