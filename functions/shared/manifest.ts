/**
 * The run's manifest and its summary (docs/output.md). Each target is one child execution of the
 * Distributed Map; ResultWriter writes one entry per child (its input, and its output or error and cause).
 * RecordManifest turns those entries into the manifest kept in S3 and the summary the execution returns.
 */
import * as z from 'zod';
import type { OuExpansion } from './organization';

/** A target's full line in the manifest. */
export interface TargetResult {
  accountId: string;
  /** The organizationalUnitId entry that reached this account; null for an explicit accountId entry. */
  organizationalUnitId?: string | null;
  region: string;
  status: 'succeeded' | 'failed';
  imageId: string | null;
  kmsKeyArn: string | null;
  grantId: string | null;
  launchCheck: { mode: string; instanceId: string | null; state: string } | null;
  cleanup?: unknown;
  /** PublishImage's result, on succeeded targets. */
  publish?: { parameterName: string | null; parameterVersion: number | null; lineage: string | null; launchTemplates: { name: string; version: number; changed: boolean }[] };
  /** ApplyRetention's result (or its recorded failure), on succeeded targets. */
  retention?: unknown;
  error: { name: string; message: string } | null;
  /** The target's child execution. */
  executionArn?: string | null;
}

/** One target as the run's summary lists it (failed ones only; the full line is in the manifest). */
export interface TargetLine {
  accountId: string | null;
  organizationalUnitId?: string | null;
  region: string | null;
  status: 'succeeded' | 'failed';
  /** The error's name on a failed target. */
  error: string | null;
}

export interface ManifestLocation {
  bucket: string;
  key: string;
  uri: string;
}

/** The run's execution output (or the cause of RunFailedError): its size does not grow with the number of targets. */
export interface RunSummary {
  /** ABORTED: a local run interrupted (Ctrl-C); the CLI's own cleanup is in each result's `cleanup`. */
  status: 'SUCCEEDED' | 'PARTIAL' | 'FAILED' | 'ABORTED';
  executionName: string;
  source: { imageId: string; region: string; accountId: string; name?: string } | null;
  sourceShare: {
    revoked: boolean;
    accountIds?: string[];
    snapshotIds?: string[];
    /** Ended executions whose shares this run revoked too (the share ledger). */
    executions?: string[];
    /** Permissions that stay on the source, and why (functions/shared/share.ts LeftShare). */
    left?: { accountId: string; resourceId: string; reason: string; executionName?: string; executionStatus?: string }[];
    error?: unknown;
    /** In the summary: some lists were cut to MAX_SHARE_ENTRIES (the manifest has them all). */
    trimmed?: boolean;
  } | null;
  /** What each organizationalUnitId entry expanded to (functions/shared/organization.ts OuExpansion). */
  organization?: OuExpansion[];
  counts: { targets: number; succeeded: number; failed: number };
  /** The first MAX_FAILED_LINES failed targets. */
  failed: TargetLine[];
  /** Where the full manifest is (null when the run stopped before its targets). */
  manifest: ManifestLocation | null;
  mapRunArn: string | null;
  error?: { name: string; message: string };
}

/** The manifest in S3: the summary's fields with every target's full line. */
export interface Manifest extends RunSummary {
  results: TargetResult[];
}

/** Failed targets the summary names; the rest are counted, and listed in the manifest. */
export const MAX_FAILED_LINES = 50;
/** Entries of each list in the source share the summary keeps (accounts, snapshots, executions, permissions left). */
export const MAX_SHARE_ENTRIES = 20;

/** The source share as the summary carries it: each list cut to MAX_SHARE_ENTRIES, `trimmed` when one was (the manifest has them all). */
export function summaryShare(share: RunSummary['sourceShare']): RunSummary['sourceShare'] {
  if (share === null) return null;
  let trimmed = false;
  const cut = <T>(list: T[] | undefined): T[] | undefined => {
    if (list === undefined || list.length <= MAX_SHARE_ENTRIES) return list;
    trimmed = true;
    return list.slice(0, MAX_SHARE_ENTRIES);
  };
  const out = { ...share, accountIds: cut(share.accountIds), snapshotIds: cut(share.snapshotIds), executions: cut(share.executions), left: cut(share.left) };
  for (const key of ['accountIds', 'snapshotIds', 'executions', 'left'] as const) if (out[key] === undefined) delete out[key];
  return trimmed ? { ...out, trimmed: true } : out;
}

/** ResultWriter's manifest.json: where it wrote each kind of child execution result. */
export const resultWriterManifestSchema = z.looseObject({
  DestinationBucket: z.string().optional(),
  MapRunArn: z.string().optional(),
  ResultFiles: z.looseObject({
    SUCCEEDED: z.array(z.looseObject({ Key: z.string() })).optional(),
    FAILED: z.array(z.looseObject({ Key: z.string() })).optional(),
    PENDING: z.array(z.looseObject({ Key: z.string() })).optional(),
  }),
});

/** One entry of a ResultWriter results file (Transformation NONE: the child's input and output as JSON strings). */
export interface ChildExecutionResult {
  ExecutionArn?: string;
  Name?: string;
  Status?: string;
  Input?: string;
  Output?: string;
  Error?: string;
  Cause?: string;
}

function parse(text: string | undefined): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A child execution's line: its output when it succeeded, its cause (the recorded failed line) when the target failed. */
export function targetResult(child: ChildExecutionResult): TargetResult {
  const input = parse(child.Input);
  const target = isObject(input) && isObject(input.item) && isObject(input.item.target) ? input.item.target : {};
  const where = {
    accountId: String(target.accountId ?? '(unknown)'),
    organizationalUnitId: typeof target.organizationalUnitId === 'string' ? target.organizationalUnitId : null,
    region: String(target.region ?? '(unknown)'),
  };
  const arn = child.ExecutionArn ?? null;
  if (child.Status === 'SUCCEEDED') {
    const output = parse(child.Output);
    if (isObject(output)) {
      const { line: _line, ...result } = output;
      return { ...(result as unknown as TargetResult), ...where, status: 'succeeded', executionArn: arn };
    }
  }
  const recorded = parse(child.Cause);
  if (isObject(recorded) && recorded.status === 'failed' && isObject(recorded.error)) {
    const { line: _line, ...result } = recorded;
    return { ...(result as unknown as TargetResult), ...where, status: 'failed', executionArn: arn };
  }
  const name = child.Error ?? (child.Status === 'SUCCEEDED' ? 'MalformedOutputError' : `Execution${child.Status ?? 'Unknown'}`);
  return {
    ...where,
    status: 'failed',
    imageId: null,
    kmsKeyArn: null,
    grantId: null,
    launchCheck: null,
    error: { name, message: child.Cause ?? `the target's child execution ended ${child.Status ?? 'without a status'}` },
    executionArn: arn,
  };
}

export interface ManifestParts {
  executionName: string;
  source: RunSummary['source'];
  sourceShare: RunSummary['sourceShare'];
  organization?: OuExpansion[];
  targetCount: number;
  mapRunArn: string | null;
  location: ManifestLocation;
  children: ChildExecutionResult[];
}

/** The manifest (every target) and the summary (counts and the first failed targets). */
export function buildManifest(parts: ManifestParts): { manifest: Manifest; summary: RunSummary } {
  const results = parts.children.map(targetResult).sort((a, b) => a.accountId.localeCompare(b.accountId) || a.region.localeCompare(b.region));
  const succeeded = results.filter((r) => r.status === 'succeeded').length;
  // Items the Map Run never reported (it failed, or was stopped) count as failed.
  const failed = Math.max(parts.targetCount, results.length) - succeeded;
  const status: RunSummary['status'] = failed === 0 ? 'SUCCEEDED' : succeeded > 0 ? 'PARTIAL' : 'FAILED';
  const source = parts.source ? { imageId: parts.source.imageId, region: parts.source.region, accountId: parts.source.accountId, ...(parts.source.name ? { name: parts.source.name } : {}) } : null;
  const summary: RunSummary = {
    status,
    executionName: parts.executionName,
    source,
    sourceShare: summaryShare(parts.sourceShare),
    ...(parts.organization && parts.organization.length > 0 ? { organization: parts.organization } : {}),
    counts: { targets: Math.max(parts.targetCount, results.length), succeeded, failed },
    failed: results
      .filter((r) => r.status === 'failed')
      .slice(0, MAX_FAILED_LINES)
      .map((r) => ({ accountId: r.accountId, organizationalUnitId: r.organizationalUnitId ?? null, region: r.region, status: 'failed' as const, error: r.error?.name ?? null })),
    manifest: parts.location,
    mapRunArn: parts.mapRunArn,
  };
  return { manifest: { ...summary, sourceShare: parts.sourceShare, results }, summary };
}

/** Is this a run's summary (execution output or RunFailedError cause)? */
export function isRunSummary(value: unknown): value is RunSummary {
  const v = value as Partial<RunSummary> | null;
  return typeof v === 'object' && v !== null && typeof v.status === 'string' && typeof v.counts === 'object' && Array.isArray(v.failed);
}
