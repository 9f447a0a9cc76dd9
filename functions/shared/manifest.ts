/**
 * The run's manifest and its summary (docs/output.md). Each target is one child execution of the
 * Distributed Map; ResultWriter writes one entry per child (its input, and its output or error and cause).
 * RecordManifest turns those entries into the manifest kept in S3 and the summary the execution returns.
 */
import * as z from 'zod';
import { parseJson } from './json';
import type { Manifest, ManifestLocation, OuExpansion, RunSummary, TargetLine, TargetResult } from './manifest-schema';

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The target a Map Run child ran, from its input (`{ item: { target } }`); '(unknown)' where the input does not say. */
export function childTarget(child: Pick<ChildExecutionResult, 'Input'>): { accountId: string; organizationalUnitId: string | null; region: string } {
  const input = parseJson(child.Input);
  const target = isObject(input) && isObject(input.item) && isObject(input.item.target) ? input.item.target : {};
  return {
    accountId: String(target.accountId ?? '(unknown)'),
    organizationalUnitId: typeof target.organizationalUnitId === 'string' ? target.organizationalUnitId : null,
    region: String(target.region ?? '(unknown)'),
  };
}

/** A child execution's line: its output when it succeeded, its cause (the recorded failed line) when the target failed. */
export function targetResult(child: ChildExecutionResult): TargetResult {
  const where = childTarget(child);
  const arn = child.ExecutionArn ?? null;
  if (child.Status === 'SUCCEEDED') {
    const output = parseJson(child.Output);
    if (isObject(output)) {
      const { line: _line, ...result } = output;
      return { ...(result as unknown as TargetResult), ...where, status: 'succeeded', executionArn: arn };
    }
  }
  const recorded = parseJson(child.Cause);
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
  /** Lines kept from the run's manifest (a redrive's retry): those of targets the children do not run again. */
  kept?: TargetResult[];
}

/** The source as the summary names it: its image, region, account and name (not its snapshots). */
export function summarySource(source: { imageId: string; region: string; accountId: string; name?: string | undefined } | null): RunSummary['source'] {
  return source ? { imageId: source.imageId, region: source.region, accountId: source.accountId, ...(source.name ? { name: source.name } : {}) } : null;
}

/** The summary's lines: the first MAX_FAILED_LINES failed targets, each with its error's name. */
export function failedLines(results: readonly TargetResult[]): TargetLine[] {
  return results
    .filter((r) => r.status === 'failed')
    .slice(0, MAX_FAILED_LINES)
    .map((r) => ({ accountId: r.accountId, organizationalUnitId: r.organizationalUnitId ?? null, region: r.region, status: 'failed' as const, error: r.error?.name ?? null }));
}

/** The manifest (every target) and the summary (counts and the first failed targets). */
export function buildManifest(parts: ManifestParts): { manifest: Manifest; summary: RunSummary } {
  const fresh = parts.children.map(targetResult);
  const rerun = new Set(fresh.map((r) => `${r.accountId}/${r.region}`));
  const kept = (parts.kept ?? []).filter((r) => !rerun.has(`${r.accountId}/${r.region}`));
  const results = [...kept, ...fresh].sort((a, b) => a.accountId.localeCompare(b.accountId) || a.region.localeCompare(b.region));
  const succeeded = results.filter((r) => r.status === 'succeeded').length;
  // Items the Map Run never reported (it failed, or was stopped) count as failed.
  const failed = Math.max(parts.targetCount, results.length) - succeeded;
  const status: RunSummary['status'] = failed === 0 ? 'SUCCEEDED' : succeeded > 0 ? 'PARTIAL' : 'FAILED';
  const summary: RunSummary = {
    status,
    executionName: parts.executionName,
    source: summarySource(parts.source),
    sourceShare: summaryShare(parts.sourceShare),
    counts: { targets: Math.max(parts.targetCount, results.length), succeeded, failed },
    failed: failedLines(results),
    manifest: parts.location,
    mapRunArn: parts.mapRunArn,
  };
  // The OU expansions go to the manifest only: their account lists grow with the organization, the summary must not.
  const organization = parts.organization && parts.organization.length > 0 ? { organization: parts.organization } : {};
  return { manifest: { ...summary, sourceShare: parts.sourceShare, ...organization, results }, summary };
}
