/** The manifest a run reports, as the state machine builds it (see the README's "Output"). */
export interface TargetResult {
  accountId: string;
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
}

export interface Manifest {
  status: 'SUCCEEDED' | 'PARTIAL' | 'FAILED';
  executionName: string;
  source: { imageId: string; region: string; accountId: string; name?: string; snapshotIds?: string[] } | null;
  sourceShare: { revoked: boolean; accountIds?: string[]; snapshotIds?: string[]; error?: unknown };
  results: TargetResult[];
}
