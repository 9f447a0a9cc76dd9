/**
 * The run's output contract, one zod schema per shape (docs/output.md): a target's line in the manifest, the run's
 * summary (the execution's output, the cause of RunFailedError, the completion event's detail) and the manifest in S3
 * (the summary with every target's line). The TypeScript types are inferred from these schemas, NotifyCompletion and
 * the CLI validate with them, and `npm run schema` publishes them as JSON Schema in schema/ for subscribers of the
 * completion event and readers of the manifest (test/unit/schema.test.ts keeps the published files current).
 */
import * as z from 'zod';

/** An error as the pipeline records it: the error's name and message. */
export const errorSchema = z.object({ name: z.string(), message: z.string() });
/** An error as a Catch records it (ResultPath of a Catch: Step Functions' Error and Cause). */
export const caughtErrorSchema = z.object({ Error: z.string(), Cause: z.string() });

/** The launch check's own cleanup (functions/shared/launch-check.ts): its group, template and instances. */
export const launchCheckCleanupSchema = z.object({
  name: z.string(),
  autoScalingGroupDeleted: z.boolean(),
  launchTemplateDeleted: z.boolean(),
  terminatedInstanceIds: z.array(z.string()),
});

/** What the janitor, `ami-pipeline cleanup` or an interrupted local run removed in one target (functions/shared/cleanup.ts). */
export const targetCleanupSchema = z.object({
  accountId: z.string(),
  region: z.string(),
  launchCheck: launchCheckCleanupSchema.nullable(),
  /** Copies of this execution that had ended `failed`, now deregistered. */
  deregistered: z.array(z.string()),
  error: errorSchema.nullable(),
});

/** One target the janitor could not clean up (functions/janitor.ts SummarizeCleanup). */
export const notCleanedUpSchema = z.object({ accountId: z.string(), region: z.string(), error: errorSchema });

/** What the janitor's cleanup of a stopped run did (functions/janitor.ts SummarizeCleanup). */
export const cleanupSummarySchema = z.object({
  /** Targets whose child execution ran (one per target of the stopped run). */
  targets: z.number().int(),
  cleanedUp: z.number().int(),
  notCleanedUp: z.number().int(),
  /** Launch checks (test group, template or instance) removed, and copies that ended failed deregistered. */
  launchChecksRemoved: z.number().int(),
  copiesDeregistered: z.number().int(),
  /** The first targets not cleaned up; `ami-pipeline cleanup --input` retries them. */
  failed: z.array(notCleanedUpSchema),
  mapRunArn: z.string().nullable(),
  /** ResultWriter's manifest of the cleanup's Map Run: every target's result. */
  results: z.string(),
});

/** Why a permission stays on the source (functions/shared/share.ts). */
export const leftShareSchema = z.object({
  accountId: z.string(),
  /** The image or snapshot ID. */
  resourceId: z.string(),
  reason: z.enum(['shared-by-hand', 'execution-running', 'execution-unknown']),
  /** The execution that still claims it (execution-running, execution-unknown). */
  executionName: z.string().optional(),
  /** Step Functions' status of that execution, or why it is not known. */
  executionStatus: z.string().optional(),
});

/** What one organizationalUnitId entry expanded to (functions/shared/organization.ts). */
export const ouExpansionSchema = z.object({
  organizationalUnitId: z.string(),
  /** Every account found under the OU and its children. */
  found: z.number().int(),
  /** The accounts this entry targets. */
  targeted: z.array(z.string()),
  /** Accounts not ACTIVE, with their state: listed, not targeted, not failed. */
  skipped: z.array(z.object({ accountId: z.string(), state: z.string() })),
  excluded: z.array(z.string()),
  /** Accounts an explicit accountId entry (or an earlier OU entry with the same settings) already targets. */
  coveredElsewhere: z.array(z.string()),
  /** How many more accounts each list had past MAX_LISTED; absent when none. */
  notListed: z.object({ skipped: z.number().int(), excluded: z.number().int(), coveredElsewhere: z.number().int() }).optional(),
});

/** PublishImage's result (functions/publish.ts): the parameter, the launch templates and deregistration protection. */
export const publishResultSchema = z.object({
  parameterName: z.string().nullable(),
  parameterVersion: z.number().int().nullable(),
  lineage: z.string().nullable(),
  launchTemplates: z.array(z.object({ name: z.string(), version: z.number().int(), changed: z.boolean() })),
  /** Deregistration protection: the copy it is on now (null: publish.protect is false), and older copies it left. */
  protection: z.object({
    imageId: z.string().nullable(),
    withCooldown: z.boolean(),
    movedFrom: z.array(z.object({ imageId: z.string(), state: z.string() })),
  }),
  /** A rekey's RevokeOldGrants: the grants on the keys the lineage used before. */
  revokedGrants: z.object({ revoked: z.array(z.object({ keyArn: z.string(), grantId: z.string() })) }).optional(),
});

/** Which check keeps a copy from being retired (functions/shared/image-use.ts). */
export const keepCheckSchema = z.enum([
  'new-copy',
  'newest',
  'parameter',
  'image-references',
  'launch-template-default',
  'deregistration-protection',
  'last-launched',
]);

/** Snapshots the retention sweep deleted, and those it left with why (functions/shared/sweep.ts). */
export const sweepResultSchema = z.object({
  deleted: z.array(z.string()),
  left: z.array(z.object({ snapshotId: z.string(), reason: z.string() })),
});

/** ApplyRetention's result (functions/retention.ts). */
export const retentionResultSchema = z.object({
  lineage: z.string().nullable(),
  keep: z.number().int(),
  graceDays: z.number(),
  dryRun: z.boolean(),
  skipped: z.string().nullable(),
  kept: z.array(z.object({ imageId: z.string(), check: keepCheckSchema, reason: z.string() })),
  /** Disabled and waiting for the end of their grace period (this run or an earlier one disabled them). */
  disabled: z.array(z.object({ imageId: z.string(), retireAfter: z.string(), since: z.enum(['this run', 'earlier']) })),
  /** Deregistered, with the snapshots deleted with them and those EC2 left (ReturnCode other than success). */
  retired: z.array(z.object({ imageId: z.string(), snapshotIds: z.array(z.string()), snapshotsLeft: z.array(z.object({ snapshotId: z.string(), code: z.string() })) })),
  swept: sweepResultSchema,
});

/** A target's full line in the manifest (RecordTargetSuccess / RecordTargetFailure in statemachine/distribute.asl.yml). */
export const targetResultSchema = z.object({
  accountId: z.string(),
  /** The organizationalUnitId entry that reached this account; null for an explicit accountId entry. */
  organizationalUnitId: z.string().nullable().optional(),
  region: z.string(),
  status: z.enum(['succeeded', 'failed']),
  imageId: z.string().nullable(),
  kmsKeyArn: z.string().nullable(),
  grantId: z.string().nullable(),
  launchCheck: z.object({ mode: z.string(), instanceId: z.string().nullable(), state: z.string() }).nullable(),
  /** On failed targets: what the cleanup removed, or its error. */
  cleanup: z.union([targetCleanupSchema, launchCheckCleanupSchema, z.object({ error: errorSchema })]).nullable().optional(),
  /** PublishImage's result, on succeeded targets. */
  publish: publishResultSchema.optional(),
  /** ApplyRetention's result (or its recorded failure: retention never fails a target whose copy is good), on succeeded targets. */
  retention: z.union([retentionResultSchema, z.object({ failed: z.literal(true), error: caughtErrorSchema })]).optional(),
  error: errorSchema.nullable(),
  /** The target's child execution. */
  executionArn: z.string().nullable().optional(),
});

/** One target as the run's summary lists it (failed ones only; the full line is in the manifest). */
export const targetLineSchema = z.object({
  accountId: z.string().nullable(),
  organizationalUnitId: z.string().nullable().optional(),
  region: z.string().nullable(),
  status: z.enum(['succeeded', 'failed']),
  /** The error's name on a failed target. */
  error: z.string().nullable(),
});

export const manifestLocationSchema = z.object({ bucket: z.string(), key: z.string(), uri: z.string() });

/** The source image the run distributed (the janitor's report may carry more of the resolved source). */
export const sourceSchema = z.looseObject({ imageId: z.string(), region: z.string(), accountId: z.string(), name: z.string().optional() });

/** The source's share at the end of the run: revoked, or what stays and why. */
export const sourceShareSchema = z.object({
  /** ModifyAttributes' unshare: the action and the source image it revoked on. */
  action: z.literal('unshare').optional(),
  imageId: z.string().optional(),
  /** True when no permission of this execution or of an ended one remains. */
  revoked: z.boolean(),
  accountIds: z.array(z.string()).optional(),
  snapshotIds: z.array(z.string()).optional(),
  /** Ended executions whose shares this run revoked too (the share ledger). */
  executions: z.array(z.string()).optional(),
  /** Permissions that stay on the source, and why. */
  left: z.array(leftShareSchema).optional(),
  /** True when the source image no longer exists. */
  imageGone: z.boolean().optional(),
  dryRun: z.boolean().optional(),
  /** Why the share could not be revoked (a Catch's Error and Cause, or an interrupted local run's error). */
  error: z.union([caughtErrorSchema, errorSchema]).optional(),
  /** In the summary: some lists were cut to MAX_SHARE_ENTRIES (the manifest has them all). */
  trimmed: z.boolean().optional(),
});

export const runStatusSchema = z.enum(['SUCCEEDED', 'PARTIAL', 'FAILED', 'ABORTED', 'TIMED_OUT']);

/**
 * The run's summary: the execution's output, the cause of RunFailedError and the completion event's detail. Its size
 * does not grow with the number of targets. RecordManifest writes it; ManifestNotRecorded, ReportRunError and the
 * janitor's Report* states write it by hand for runs that stopped before their manifest (counts null, error set).
 */
export const runSummarySchema = z.object({
  /** ABORTED, TIMED_OUT (and FAILED) also come from the janitor, for a run that ended without its own cleanup. */
  status: runStatusSchema,
  executionName: z.string(),
  source: sourceSchema.nullable(),
  /** Null when the run stopped before the fan-out (a refused input or source, or a failed share). */
  sourceShare: sourceShareSchema.nullable(),
  /** Null when the run stopped before its targets or its results could not be read. */
  counts: z.object({ targets: z.number().int(), succeeded: z.number().int(), failed: z.number().int() }).nullable(),
  /** The first failed targets (MAX_FAILED_LINES). */
  failed: z.array(targetLineSchema),
  /** Where the full manifest is (null when the run stopped before its targets). */
  manifest: manifestLocationSchema.nullable(),
  mapRunArn: z.string().nullable(),
  /** Why the run stopped before its targets or its manifest. */
  error: errorSchema.nullable().optional(),
  /** The janitor's report of a stopped run: what its cleanup did (null when the run stopped before it shared or made anything). */
  cleanup: z.union([cleanupSummarySchema, z.object({ mapRunArn: z.string(), error: errorSchema })]).nullable().optional(),
});

/**
 * The manifest in S3: the summary's fields (with the source share's lists whole), what each organizationalUnitId entry
 * expanded to (not in the summary: a 1,000-account OU's lists would take a failed run's cause past 32,768 characters),
 * and every target's full line.
 */
export const manifestSchema = runSummarySchema.extend({
  /** What each organizationalUnitId entry expanded to (absent without OU entries). */
  organization: z.array(ouExpansionSchema).optional(),
  results: z.array(targetResultSchema),
});

/**
 * The completion event's detail: the summary or, past an EventBridge entry's 256 KB, `truncated: true` with the
 * counts, the source, the share and the failed targets (or only the counts).
 */
export const completionDetailSchema = z.union([
  runSummarySchema,
  z.object({
    status: runStatusSchema,
    executionName: z.string(),
    truncated: z.literal(true),
    counts: runSummarySchema.shape.counts,
    manifest: runSummarySchema.shape.manifest,
    source: runSummarySchema.shape.source.optional(),
    sourceShare: runSummarySchema.shape.sourceShare.optional(),
    failed: runSummarySchema.shape.failed.optional(),
  }),
]);

export type RunError = z.infer<typeof errorSchema>;
export type LaunchCheckCleanup = z.infer<typeof launchCheckCleanupSchema>;
export type TargetCleanup = z.infer<typeof targetCleanupSchema>;
export type NotCleanedUp = z.infer<typeof notCleanedUpSchema>;
export type CleanupSummary = z.infer<typeof cleanupSummarySchema>;
export type LeftShare = z.infer<typeof leftShareSchema>;
export type OuExpansion = z.infer<typeof ouExpansionSchema>;
export type PublishResult = z.infer<typeof publishResultSchema>;
export type KeepCheck = z.infer<typeof keepCheckSchema>;
export type SweepResult = z.infer<typeof sweepResultSchema>;
export type RetentionResult = z.infer<typeof retentionResultSchema>;
export type TargetResult = z.infer<typeof targetResultSchema>;
export type TargetLine = z.infer<typeof targetLineSchema>;
export type ManifestLocation = z.infer<typeof manifestLocationSchema>;
export type SourceShare = z.infer<typeof sourceShareSchema>;
export type RunStatus = z.infer<typeof runStatusSchema>;
export type RunSummary = z.infer<typeof runSummarySchema>;
export type Manifest = z.infer<typeof manifestSchema>;
export type CompletionDetail = z.infer<typeof completionDetailSchema>;

/** A failed parse's issues as `field.path: message`, the first `max` of them. */
export function schemaIssues(error: z.ZodError, max = 3): string[] {
  return error.issues.slice(0, max).map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(the whole document)'}: ${i.message}`);
}

/**
 * The target lines of a manifest read back from S3 (an earlier attempt's, on a redrive), each checked against the
 * schema; none when there is no manifest or its lines do not match (the targets then run again).
 */
export function storedResults(manifest: unknown): TargetResult[] {
  const parsed = manifestSchema.pick({ results: true }).safeParse(manifest);
  return parsed.success ? parsed.data.results : [];
}

/** Does this look like a run's summary (the fields that tell it apart), whether or not it is a valid one? */
export function looksLikeRunSummary(value: unknown): boolean {
  const v = value as { status?: unknown; failed?: unknown; executionName?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.status === 'string' && typeof v.executionName === 'string' && Array.isArray(v.failed);
}

const documents = {
  'run-summary': { schema: runSummarySchema, title: 'encrypted-ami-pipeline run summary (execution output, RunFailedError cause)' },
  manifest: { schema: manifestSchema, title: 'encrypted-ami-pipeline manifest (runs/<execution>/manifest.json in the runs bucket)' },
  'completion-event': { schema: completionDetailSchema, title: 'encrypted-ami-pipeline completion event detail (AMI Distribution Completed / Failed)' },
} as const;

/** The published JSON Schemas (draft 2020-12), by file name under schema/. */
export function outputJsonSchemas(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(documents).map(([name, { schema, title }]) => [
      `${name}.schema.json`,
      {
        $id: `https://github.com/encrypted-ami-pipeline/encrypted-ami-pipeline/schema/${name}.schema.json`,
        title,
        ...z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }),
      },
    ]),
  );
}
