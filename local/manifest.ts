/** The manifest a run reports, as the state machine builds it (see the README's "Output"). */
import type { OuExpansion } from '../functions/shared/organization';

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
  /** The short line the run's summary keeps. */
  line?: TargetLine;
}

/** One target as the run's own output lists it (the full line is in its batch execution's output). */
export interface TargetLine {
  accountId: string | null;
  organizationalUnitId?: string | null;
  region: string | null;
  status: 'succeeded' | 'failed';
  /** The error's name on a failed target. */
  error: string | null;
  /** Set when a whole batch execution failed rather than one target. */
  batch?: number;
}

/** The run's execution output (or the cause of RunFailedError): one short line per target, whatever their number. */
export interface RunSummary {
  /** ABORTED: a local run interrupted (Ctrl-C); the CLI's own cleanup is in each result's `cleanup`. */
  status: 'SUCCEEDED' | 'PARTIAL' | 'FAILED' | 'ABORTED';
  executionName: string;
  source: { imageId: string; region: string; accountId: string; name?: string; snapshotIds?: string[] } | null;
  sourceShare: {
    revoked: boolean;
    accountIds?: string[];
    snapshotIds?: string[];
    /** Ended executions whose shares this run revoked too (the share ledger). */
    executions?: string[];
    /** Permissions that stay on the source, and why (functions/shared/share.ts LeftShare). */
    left?: { accountId: string; resourceId: string; reason: string; executionName?: string; executionStatus?: string }[];
    error?: unknown;
  };
  /** What each organizationalUnitId entry expanded to (functions/shared/organization.ts OuExpansion). */
  organization?: OuExpansion[];
  targets: TargetLine[];
  /** The batch executions, in batch order (null for a batch whose execution failed). */
  batches: (string | null)[];
  error?: { name: string; message: string };
}

/** The manifest: the run's summary with every target's full line, read from the batch executions' outputs. */
export interface Manifest extends RunSummary {
  results: TargetResult[];
}

/** Is this a run's summary (execution output or RunFailedError cause)? */
export function isRunSummary(value: unknown): value is RunSummary {
  const v = value as Partial<RunSummary> | null;
  return typeof v === 'object' && v !== null && typeof v.status === 'string' && Array.isArray(v.batches) && Array.isArray(v.targets);
}

/**
 * The full manifest of a run: its summary plus the full line of every target, in batch order. `batchOutput` reads a
 * batch execution's output (DescribeExecution when deployed, the local run's record locally); a target whose batch
 * output cannot be read keeps the short line the summary has.
 */
export async function expandManifest(summary: RunSummary, batchOutput: (executionArn: string) => Promise<unknown>): Promise<Manifest> {
  const results: TargetResult[] = [];
  for (const arn of summary.batches) {
    const output = arn ? ((await batchOutput(arn)) as { results?: TargetResult[] } | undefined) : undefined;
    results.push(...(output?.results ?? []));
  }
  const listed = new Set(results.map((r) => `${r.accountId}/${r.region}`));
  for (const line of summary.targets) {
    if (line.accountId && line.region && listed.has(`${line.accountId}/${line.region}`)) continue;
    results.push({
      accountId: line.accountId ?? '(batch)',
      organizationalUnitId: line.organizationalUnitId ?? null,
      region: line.region ?? `batch ${line.batch ?? '?'}`,
      status: line.status,
      imageId: null,
      kmsKeyArn: null,
      grantId: null,
      launchCheck: null,
      error: line.error ? { name: line.error, message: line.batch !== undefined ? `batch execution ${line.batch} failed` : 'see the batch execution' } : null,
    });
  }
  return { ...summary, results };
}
