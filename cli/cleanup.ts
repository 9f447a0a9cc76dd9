/**
 * `ami-pipeline cleanup --input FILE`: what runs of this input's source left behind once they stopped running, found
 * and removed (or, with --dry-run, listed): shares of the source the ledger gives to ended executions, launch checks
 * (Auto Scaling group, launch template, instances) of ended executions in every target account × region, and copies
 * that ended `failed`. What stays (a running execution's, a hand-made share, one whose run cannot be told) is listed
 * with why. Exit 0 when nothing stale remains, 1 otherwise, 2 for bad input. The same search gives doctor its
 * warnings, and the interrupt handler of a local run removes its own leftovers with the same pieces.
 */
import { paginateDescribeAutoScalingGroups } from '@aws-sdk/client-auto-scaling';
import { DescribeImagesCommand, paginateDescribeInstances, paginateDescribeLaunchTemplates } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { ClientFactory } from '../functions/shared/client-factory';
import { cleanUpTarget, errorOf, removeFailedCopies, type TargetCleanup } from '../functions/shared/cleanup';
import { describeExecutionLiveness, type Liveness } from '../functions/shared/executions';
import { cleanUpLaunchCheck } from '../functions/shared/launch-check';
import { readLedger } from '../functions/shared/ledger';
import type { RunPlan, Settings, TargetPair } from '../functions/shared/plan';
import { revokeShares, type RevokeResult } from '../functions/shared/share';
import { TAGS } from '../functions/shared/tags';
import { targetClients } from '../functions/shared/target';
import { localExecutionArn, localStatus, LOCAL_EXECUTION_PREFIX } from '../local/executions';

/** Local runs from this machine's registry; every other execution through Step Functions (the SDK's settings). */
export function cliLiveness(endpointUrl?: string): Liveness {
  const remote = describeExecutionLiveness((region) => new SFNClient({ region, ...(endpointUrl ? { endpoint: endpointUrl } : {}) }));
  return async (arn) => {
    if (arn.startsWith(LOCAL_EXECUTION_PREFIX)) {
      const local = localStatus(arn);
      return local ? { running: local.status === 'RUNNING', status: local.status } : { running: false, status: 'DOES_NOT_EXIST' };
    }
    return remote(arn);
  };
}

export type ShareOutcome = RevokeResult | { revoked: false; error: { name: string; message: string } };

/** An interrupted run's own leftovers: every target's launch check and failed copies, then its share of the source. */
export async function cleanUpRun(
  executionName: string,
  plan: RunPlan,
  runTargets: TargetPair[],
  deps: { clients: ClientFactory; liveness: Liveness },
): Promise<{ share: ShareOutcome | null; targets: TargetCleanup[] }> {
  const targets: TargetCleanup[] = [];
  for (const target of runTargets) {
    targets.push(await cleanUpTarget({ executionName, target, settings: plan.settings }, plan.source?.imageId ?? null, deps));
  }
  let share: ShareOutcome | null = null;
  if (plan.source && plan.settings.mode === 'distribute') {
    try {
      share = await revokeShares(deps.clients.builder().ec2(plan.source.region), plan.source, { own: executionName, liveness: deps.liveness });
    } catch (error) {
      share = { revoked: false, error: errorOf(error) };
    }
  }
  return { share, targets };
}

export interface Leftover {
  kind: 'launch-check' | 'failed-copy';
  accountId: string;
  region: string;
  /** The group/template name or the image ID. */
  id: string;
  executionName: string | null;
  action: 'removed' | 'would-remove' | 'left';
  reason: string;
}

export interface CleanupReport {
  sources: { imageId: string; region: string; share: RevokeResult }[];
  leftovers: Leftover[];
  errors: { scope: string; name: string; message: string }[];
  /** True when something stale remains (after --dry-run: would be removed). */
  stale: boolean;
}

interface Found {
  name: string;
  executionName: string | null;
}

const tagOf = (tags: readonly { Key?: string; Value?: string }[] | undefined, key: string) => tags?.find((t) => t.Key === key)?.Value;

/** Launch checks in a target: groups, templates and instances carrying the launch-check tag (or its name prefix). */
async function launchChecksIn(item: { executionName: string; target: TargetPair; settings: Settings }, clients: ClientFactory): Promise<Found[]> {
  const target = targetClients(item, { clients });
  const found = new Map<string, Found>();
  const add = (name: string | undefined, executionName: string | undefined) => {
    if (name && !found.has(name)) found.set(name, { name, executionName: executionName ?? null });
  };
  for await (const page of paginateDescribeAutoScalingGroups({ client: target.autoScaling(item.target.region) }, {})) {
    for (const g of page.AutoScalingGroups ?? []) {
      if (tagOf(g.Tags, TAGS.launchCheck)) add(g.AutoScalingGroupName, tagOf(g.Tags, TAGS.execution));
    }
  }
  const ec2 = target.ec2(item.target.region);
  for await (const page of paginateDescribeLaunchTemplates({ client: ec2 }, {})) {
    for (const t of page.LaunchTemplates ?? []) {
      if (tagOf(t.Tags, TAGS.launchCheck)) add(t.LaunchTemplateName, tagOf(t.Tags, TAGS.execution));
    }
  }
  const instances = paginateDescribeInstances(
    { client: ec2 },
    { Filters: [{ Name: 'tag-key', Values: [TAGS.launchCheck] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] },
  );
  for await (const page of instances) {
    for (const i of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) add(tagOf(i.Tags, TAGS.launchCheck), tagOf(i.Tags, TAGS.execution));
  }
  return [...found.values()];
}

/** The execution ARN a name stands for: the ledger's record, else this machine's local run of that name. */
function arnOf(name: string, ledger: Map<string, string>): string | undefined {
  return ledger.get(name) ?? (localStatus(localExecutionArn(name)) ? localExecutionArn(name) : undefined);
}

export async function findAndRemove(
  input: { sources: { imageId: string; region: string; snapshotIds: string[] }[]; targets: TargetPair[]; settings: Settings },
  deps: { clients: ClientFactory; liveness: Liveness; dryRun: boolean },
): Promise<CleanupReport> {
  const report: CleanupReport = { sources: [], leftovers: [], errors: [], stale: false };
  const ledger = new Map<string, string>();
  for (const source of input.sources) {
    const ec2 = deps.clients.builder().ec2(source.region);
    try {
      const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [source.imageId] }))).Images?.[0];
      for (const e of readLedger(image?.Tags ?? [])) if (e.executionArn) ledger.set(e.executionName, e.executionArn);
      const share = await revokeShares(ec2, source, { liveness: deps.liveness, dryRun: deps.dryRun });
      report.sources.push({ imageId: source.imageId, region: source.region, share });
      if (!share.revoked) report.stale = true;
    } catch (error) {
      report.errors.push({ scope: `source ${source.imageId}`, ...errorOf(error) });
      report.stale = true;
    }
  }
  for (const target of input.targets) {
    const scope = `${target.accountId}/${target.region}`;
    const probe = { executionName: 'cleanup', target, settings: input.settings };
    try {
      for (const check of await launchChecksIn(probe, deps.clients)) {
        const leftover: Leftover = { kind: 'launch-check', accountId: target.accountId, region: target.region, id: check.name, executionName: check.executionName, action: 'left', reason: '' };
        report.leftovers.push(leftover);
        const arn = check.executionName ? arnOf(check.executionName, ledger) : undefined;
        const state = arn ? await deps.liveness(arn) : { running: null, status: 'no record of its execution' };
        if (state.running !== false) {
          leftover.reason = state.running ? `execution ${check.executionName ?? '?'} is still running` : `cannot tell whether execution ${check.executionName ?? '?'} is running (${state.status}); remove it by hand once it is not`;
          if (!state.running) report.stale = true;
          continue;
        }
        leftover.reason = `execution ${check.executionName ?? '?'} is ${state.status}`;
        if (deps.dryRun) {
          leftover.action = 'would-remove';
          report.stale = true;
          continue;
        }
        await cleanUpLaunchCheck({ executionName: check.executionName ?? '', target, settings: input.settings }, deps);
        leftover.action = 'removed';
      }
      for (const source of input.sources) {
        const failed = await failedCopies(probe, source.imageId, deps.clients);
        for (const copy of failed) {
          report.leftovers.push({
            kind: 'failed-copy', accountId: target.accountId, region: target.region, id: copy.imageId, executionName: copy.executionName,
            action: deps.dryRun ? 'would-remove' : 'removed', reason: 'the copy ended failed',
          });
        }
        if (failed.length > 0 && deps.dryRun) report.stale = true;
        if (!deps.dryRun) {
          for (const name of new Set(failed.map((f) => f.executionName ?? ''))) await removeFailedCopies({ executionName: name, target, settings: input.settings }, source.imageId, deps);
        }
      }
    } catch (error) {
      report.errors.push({ scope, ...errorOf(error) });
      report.stale = true;
    }
  }
  return report;
}

async function failedCopies(item: { executionName: string; target: TargetPair; settings: Settings }, sourceImageId: string, clients: ClientFactory) {
  const ec2 = targetClients(item, { clients }).ec2(item.target.region);
  const out = await ec2.send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: `tag:${TAGS.sourceImage}`, Values: [sourceImageId] }, { Name: 'state', Values: ['failed'] }] }),
  );
  return (out.Images ?? []).flatMap((i) => (i.ImageId && i.State === 'failed' ? [{ imageId: i.ImageId, executionName: tagOf(i.Tags, TAGS.execution) ?? null }] : []));
}

