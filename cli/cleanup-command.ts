/** The `cleanup` command and doctor's leftover warnings over cli/cleanup.ts. */
import { DescribeImagesCommand, type Filter, type Image } from '@aws-sdk/client-ec2';
import { createClientFactory, type ClientFactory } from '../functions/shared/clients';
import { InvalidInputError } from '../functions/shared/errors';
import type { PipelineInput } from '../functions/shared/input';
import type { Check } from '../functions/shared/preflight';
import { settingsOf, targetPairs } from '../functions/shared/plan';
import { loadInput } from '../functions/shared/resolve-source';
import { cliLiveness, findAndRemove, type CleanupReport } from './cleanup';
import { CliError } from './errors';
import { commandRegion, inFunctionsEnvironment } from './functions-env';
import { readInputFile } from './input';
import { leftText, type Output } from './render';

export interface CleanupOptions {
  input: string;
  output: 'table' | 'json';
  dryRun: boolean;
  region?: string;
  endpointUrl?: string;
}

/** The images of the builder account the input's source names: the image, or every image its filter matches. */
export async function sourcesOf(input: PipelineInput, clients: ClientFactory): Promise<{ imageId: string; region: string; snapshotIds: string[] }[]> {
  if (input.mode === 'rekey' || !input.source) return [];
  const { imageId, filter, region } = input.source;
  const ec2 = clients.builder().ec2(region);
  let images: Image[];
  if (imageId) {
    try {
      images = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images ?? [];
    } catch {
      images = [];
    }
    if (images.length === 0) return [{ imageId, region, snapshotIds: [] }];
  } else {
    const filters: Filter[] = [];
    if (filter?.name) filters.push({ Name: 'name', Values: [filter.name] });
    for (const [k, v] of Object.entries(filter?.tags ?? {})) filters.push({ Name: `tag:${k}`, Values: [v] });
    images = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: filters }))).Images ?? [];
  }
  return images.map((i) => ({
    imageId: i.ImageId ?? '',
    region,
    snapshotIds: (i.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
  }));
}

export async function cleanupReport(raw: unknown, clients: ClientFactory, options: { region: string; dryRun: boolean }): Promise<CleanupReport> {
  const input = await loadInput(raw, { clients, pipelineRegion: options.region });
  return findAndRemove(
    { sources: await sourcesOf(input, clients), targets: targetPairs(input), settings: settingsOf(input) },
    { clients, liveness: cliLiveness(), dryRun: options.dryRun },
  );
}

export function renderCleanup(report: CleanupReport, command: string): string {
  const lines: string[] = [];
  for (const s of report.sources) {
    const removed = s.share.accountIds.length;
    const verb = s.share.dryRun ? 'would revoke' : 'revoked';
    lines.push(
      `source ${s.imageId} (${s.region}): ${verb} ${removed} stale share${removed === 1 ? '' : 's'}` +
        (s.share.executions.length > 0 ? ` of ended execution(s) ${s.share.executions.join(', ')}` : '') +
        leftText(s.share.left),
    );
  }
  for (const l of report.leftovers) {
    lines.push(`${l.accountId}/${l.region} ${l.kind} ${l.id}: ${l.action.replace('-', ' ')} (${l.reason})`);
  }
  for (const e of report.errors) lines.push(`${e.scope}: ${e.name}: ${e.message}`);
  if (lines.length === 0) lines.push('nothing left behind by runs of this input');
  lines.push('', report.stale ? `stale leftovers remain${report.sources.some((s) => s.share.dryRun) ? `: remove them with ${command}` : ''}` : 'nothing stale remains');
  return `${lines.join('\n')}\n`;
}

/** Doctor's warnings: what `cleanup` would remove or cannot tell about. */
export function leftoverChecks(report: CleanupReport, command: string): Check[] {
  const checks: Check[] = [];
  for (const s of report.sources) {
    if (s.share.accountIds.length > 0 || s.share.snapshotIds.length > 0) {
      checks.push({
        scope: 'source', check: 'stale-share', verdict: 'warn',
        message: `${s.imageId} is still shared by ended execution(s) ${s.share.executions.join(', ') || '?'} with ${s.share.accountIds.join(', ') || 'its snapshots\' accounts'}`,
        fix: command,
      });
    }
  }
  for (const l of report.leftovers.filter((x) => x.action !== 'removed' && !/still running/.test(x.reason))) {
    checks.push({ scope: `${l.accountId}/${l.region}`, check: `stale-${l.kind}`, verdict: 'warn', message: `${l.id}: ${l.reason}`, fix: command });
  }
  // A target whose role cannot be assumed already fails its own check.
  for (const e of report.errors.filter((x) => x.name !== 'TargetRoleNotAssumableError')) checks.push({ scope: e.scope, check: 'leftovers', verdict: 'warn', message: `could not look for leftovers: ${e.name}: ${e.message}` });
  return checks;
}

export function cleanupCommandLine(options: { input: string; endpointUrl?: string }): string {
  return `ami-pipeline cleanup --input ${options.input}${options.endpointUrl ? ` --endpoint-url ${options.endpointUrl}` : ''}`;
}

export async function cleanupCommand(options: CleanupOptions, io: { stdout: Output }): Promise<number> {
  const file = readInputFile(options.input);
  const region = commandRegion(options.region, file.input.source?.region);
  return inFunctionsEnvironment(options.endpointUrl, async () => {
    const report = await cleanupReport(file.raw, createClientFactory(region), { region, dryRun: options.dryRun }).catch((error: unknown) => {
      if (error instanceof InvalidInputError) throw new CliError(error.message, 2);
      throw error;
    });
    io.stdout.write(options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderCleanup(report, cleanupCommandLine(options)));
    return report.stale ? 1 : 0;
  });
}
