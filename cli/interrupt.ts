/**
 * Ctrl-C (SIGINT) or SIGTERM during a local run: the run stops starting new work (as StopExecution stops an
 * execution), then the CLI does what no state of a stopped execution does: removes the launch checks of its targets,
 * deregisters copies that ended `failed`, revokes the source share through the ledger, prints what it did and what
 * is left with the command that removes it, writes the manifest so far, and exits 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), as a shell reports it. A second signal exits at once,
 * still saying what is left.
 */
import type { EventLog } from '../local/asl';
import type { Manifest, TargetResult } from '../functions/shared/manifest-schema';
import { failedLines, summarySource } from '../functions/shared/manifest';
import { constants as osConstants } from 'node:os';
import type { RunPlan, TargetPair } from '../functions/shared/plan';
import type { RevokeResult } from '../functions/shared/share';
import type { TargetCleanup } from '../functions/shared/cleanup';
import type { Output } from './render';

/** The exit code a shell reports for a process ended by `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 2);
}

export interface Interrupt {
  signal: AbortSignal;
  /** 128 + the number of the first signal received (130 for Ctrl-C, 143 for SIGTERM). */
  exitCode(): number;
  /** What to print when a second signal ends the process before the cleanup finished. */
  setLeftover(describe: () => string): void;
  dispose(): void;
}

/** Catch SIGINT and SIGTERM for the duration of a local run. */
export function catchInterrupts(stderr: Output, cleanupCommand: string): Interrupt {
  const controller = new AbortController();
  let leftover = () => `left as it was: run ${cleanupCommand} to remove what this run made\n`;
  let first: NodeJS.Signals = 'SIGINT';
  const handler = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      first = signal;
      stderr.write(`\n${signal}: stopping the run (nothing new starts), then removing what its targets were doing and the source share; ${signal} again exits at once\n`);
      controller.abort();
      return;
    }
    stderr.write(`\n${signal} again: exiting before the cleanup finished; ${leftover()}`);
    process.exit(signalExitCode(first));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    exitCode: () => signalExitCode(first),
    setLeftover: (describe) => {
      leftover = describe;
    },
    dispose: () => {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
  };
}

/** The run's plan, as ResolveSource returned it (undefined when the run stopped before). */
export function planOf(events: EventLog[]): RunPlan | undefined {
  const exited = events.find((e) => e.type === 'StateExited' && e.state?.name === 'ResolveSource');
  return exited?.state?.output as RunPlan | undefined;
}

interface Known {
  imageId: string | null;
  kmsKeyArn: string | null;
  grantId: string | null;
  status: 'succeeded' | null;
}

/** What each target had made when the run stopped: its copy, key and grant, from the states' outputs. */
export function madeSoFar(events: EventLog[]): Map<string, Known> {
  const known = new Map<string, Known>();
  for (const e of events) {
    if (e.type !== 'StateExited') continue;
    const out = e.state?.output as
      | { item?: { target?: { accountId?: string; region?: string } }; copy?: { imageId?: string; kmsKeyArn?: string }; grant?: { grantId?: string } }
      | { accountId?: string; region?: string; status?: string; imageId?: string; kmsKeyArn?: string; grantId?: string }
      | undefined;
    if (!out || typeof out !== 'object') continue;
    if ('item' in out && out.item?.target?.accountId && out.item.target.region) {
      const key = `${out.item.target.accountId}/${out.item.target.region}`;
      const k = known.get(key) ?? { imageId: null, kmsKeyArn: null, grantId: null, status: null };
      if (out.copy?.imageId) k.imageId = out.copy.imageId;
      if (out.copy?.kmsKeyArn) k.kmsKeyArn = out.copy.kmsKeyArn;
      if (out.grant?.grantId) k.grantId = out.grant.grantId;
      known.set(key, k);
    } else if (e.state?.name === 'RecordTargetSuccess' && 'status' in out && out.status === 'succeeded' && out.accountId && out.region) {
      known.set(`${out.accountId}/${out.region}`, {
        imageId: out.imageId ?? null,
        kmsKeyArn: out.kmsKeyArn ?? null,
        grantId: out.grantId ?? null,
        status: 'succeeded',
      });
    }
  }
  return known;
}

/** The manifest of a stopped run: what each target made, what the cleanup did, and the share. */
export function interruptedManifest(
  executionName: string,
  plan: RunPlan,
  targets: TargetPair[],
  events: EventLog[],
  share: RevokeResult | { revoked: false; error: { name: string; message: string } } | null,
  cleanups: TargetCleanup[],
): Manifest {
  const known = madeSoFar(events);
  const byTarget = new Map(cleanups.map((c) => [`${c.accountId}/${c.region}`, c]));
  const results: TargetResult[] = targets.map((t) => {
    const k = known.get(`${t.accountId}/${t.region}`);
    const done = k?.status === 'succeeded';
    return {
      accountId: t.accountId,
      organizationalUnitId: t.organizationalUnitId,
      region: t.region,
      status: done ? 'succeeded' : 'failed',
      imageId: k?.imageId ?? null,
      kmsKeyArn: k?.kmsKeyArn ?? null,
      grantId: k?.grantId ?? null,
      launchCheck: null,
      cleanup: byTarget.get(`${t.accountId}/${t.region}`) ?? null,
      error: done ? null : { name: 'ExecutionAborted', message: 'the run was interrupted before this target finished' },
    };
  });
  return {
    status: 'ABORTED',
    executionName,
    source: summarySource(plan.source),
    sourceShare: share ?? { revoked: true, accountIds: [], snapshotIds: [], executions: [], left: [] },
    ...(plan.organization.length > 0 ? { organization: plan.organization } : {}),
    counts: { targets: results.length, succeeded: results.filter((r) => r.status === 'succeeded').length, failed: results.filter((r) => r.status === 'failed').length },
    failed: failedLines(results),
    // A stopped run records no manifest in S3: the CLI writes this one where --manifest says.
    manifest: null,
    mapRunArn: null,
    error: { name: 'ExecutionAborted', message: 'interrupted (SIGINT or SIGTERM); the CLI removed what it could, see cleanup' },
    results,
  };
}
