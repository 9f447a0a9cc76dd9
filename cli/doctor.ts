/**
 * `ami-pipeline doctor`: every check of the builder account and the source, then of every target account ×
 * region, before any copy starts. Pass / warn / fail, each failure with the AWS error a run would hit and the fix.
 * Exit 0 when nothing fails, 1 when something does (2, as everywhere, for bad input).
 */
import { randomUUID } from 'node:crypto';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createClientFactory, sessionNameFor, type ClientFactory } from '../functions/shared/clients';
import { InvalidInputError, PipelineError } from '../functions/shared/errors';
import { ebsDefaultCheck, checkTarget, type Check, type CheckedTarget } from '../functions/shared/preflight';
import { resolveTargets, type ResolvedTarget } from '../functions/shared/organization';
import { explicitTargets, settingsOf, targetPairs } from '../functions/shared/plan';
import { loadInput, resolveSource, type SnapshotDeps } from '../functions/shared/resolve-source';
import { allowedImagesCheck } from './allowed-images';
import { recycleBinCheck } from './recycle-bin';
import type { Output } from './render';
import { cliLiveness, findAndRemove } from './cleanup';
import { leftoverChecks, sourcesOf as leftoverSources } from './cleanup-command';
import { CliError, noCredentialsMessage } from './errors';
import { permissionsCheck } from './permissions';
import { commandRegion, inFunctionsEnvironment } from './functions-env';
import { readInputFile } from './input';

export interface DoctorOptions {
  input: string;
  output: 'table' | 'json';
  region?: string;
  endpointUrl?: string;
}

export interface DoctorReport {
  verdict: 'pass' | 'warn' | 'fail';
  checks: Check[];
}

/** Run every check; `clients` acts as the builder account and, through the target role, as each target. */
export async function doctor(
  raw: unknown,
  clients: ClientFactory,
  deps: Pick<SnapshotDeps, 'pipelineRegion' | 'builderAccountId'> & { inputPath?: string },
): Promise<DoctorReport> {
  const checks: Check[] = [];
  // The doctor only looks: ResolveSource's targets file is not written anywhere.
  const snapshotDeps: SnapshotDeps = {
    clients,
    ...deps,
    runsBucket: () => 'doctor-writes-nothing',
    store: { putJson: async () => undefined, getJson: async () => null },
  };
  const input = await loadInput(raw, snapshotDeps);
  try {
    const plan = await resolveSource({ input: raw, executionName: 'doctor' }, snapshotDeps);
    checks.push(
      plan.skipped
        ? { scope: 'source', check: 'source-image', verdict: 'warn', message: `a run would do nothing: ${plan.skipReason ?? ''}` }
        : {
            scope: 'source', check: 'source-image', verdict: 'pass',
            message: `${plan.source?.imageId ?? ''} (${plan.source?.name ?? ''}) is available, EBS-backed and shareable; ${plan.source?.snapshotIds.length ?? 0} snapshot(s) unencrypted or on a key the targets may use`,
          },
    );
  } catch (error) {
    const aws = error instanceof PipelineError && error.aws ? error.aws : undefined;
    checks.push({
      scope: 'source', check: 'source-image', verdict: 'fail', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      ...(aws ? { awsError: `${aws.code}: ${aws.message}` } : {}),
    });
  }
  if (input.source) checks.push(await ebsDefaultCheck(clients.builder(), input.source.region, 'builder', true));

  const executionName = `doctor-${randomUUID().slice(0, 8)}`;
  const settings = settingsOf(input);
  let targets: ResolvedTarget[] = explicitTargets(input);
  if ((input.targets ?? []).some((t) => t.organizationalUnitId !== undefined)) {
    try {
      const resolution = await resolveTargets(input, { clients, pipelineRegion: deps.pipelineRegion, sessionName: sessionNameFor(executionName) });
      targets = resolution.targets;
      for (const ou of resolution.organization) {
        const skipped = ou.skipped.map((s) => `${s.accountId} (${s.state})`);
        checks.push({
          scope: ou.organizationalUnitId, check: 'organization', verdict: ou.targeted.length > 0 ? 'pass' : 'warn',
          message: `${ou.found} account(s) found: ${ou.targeted.length} targeted${ou.targeted.length ? ` (${ou.targeted.join(', ')})` : ''}` +
            `${skipped.length ? `; skipped, not ACTIVE: ${skipped.join(', ')}` : ''}${ou.excluded.length ? `; excluded: ${ou.excluded.join(', ')}` : ''}` +
            `${ou.coveredElsewhere.length ? `; targeted by another entry: ${ou.coveredElsewhere.join(', ')}` : ''}`,
        });
      }
    } catch (error) {
      const aws = error instanceof PipelineError && error.aws ? error.aws : undefined;
      checks.push({
        scope: 'organization', check: 'organization', verdict: 'fail', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        ...(aws ? { awsError: `${aws.code}: ${aws.message}` } : {}),
      });
    }
  }
  const items: CheckedTarget[] = targetPairs(input, targets).map((target) => ({ executionName, target, settings }));
  const perTarget = await Promise.all(
    items.map(async (item) => {
      const target = clients.target({
        accountId: item.target.accountId,
        roleName: settings.targetRoleName,
        externalId: settings.externalId ?? undefined,
        sessionName: sessionNameFor(executionName),
      });
      const found = await checkTarget(item, target);
      // The role's own policies, when the role could be assumed at all.
      const assumed = found.some((c) => c.check === 'target-role' && c.verdict === 'pass');
      return assumed ? [...found, await permissionsCheck(item, target), await allowedImagesCheck(item, target), await recycleBinCheck(item, target)] : found;
    }),
  );
  checks.push(...perTarget.flat());
  // What stopped or interrupted runs of this input left behind (ami-pipeline cleanup removes it).
  const leftovers = await findAndRemove(
    { sources: await leftoverSources(input, clients), targets: targetPairs(input), settings },
    { clients, liveness: cliLiveness(), dryRun: true },
  );
  checks.push(...leftoverChecks(leftovers, `ami-pipeline cleanup --input ${deps.inputPath ?? 'FILE'}`));
  const verdict = checks.some((c) => c.verdict === 'fail') ? 'fail' : checks.some((c) => c.verdict === 'warn') ? 'warn' : 'pass';
  return { verdict, checks };
}

const MARK: Record<Check['verdict'], string> = { pass: 'pass', warn: 'WARN', fail: 'FAIL' };

export function renderDoctor(report: DoctorReport): string {
  const scopeWidth = Math.max(5, ...report.checks.map((c) => c.scope.length));
  const checkWidth = Math.max(5, ...report.checks.map((c) => c.check.length));
  const lines = [`${'SCOPE'.padEnd(scopeWidth)}  ${'CHECK'.padEnd(checkWidth)}  VERDICT  DETAIL`];
  for (const c of report.checks) {
    lines.push(`${c.scope.padEnd(scopeWidth)}  ${c.check.padEnd(checkWidth)}  ${MARK[c.verdict].padEnd(7)}  ${c.message}`);
    const indent = ' '.repeat(scopeWidth + checkWidth + 13);
    if (c.verdict !== 'pass' && c.awsError) lines.push(`${indent}AWS: ${c.awsError}`);
    if (c.verdict !== 'pass' && c.fix) lines.push(`${indent}fix: ${c.fix}`);
  }
  const count = (v: Check['verdict']) => report.checks.filter((c) => c.verdict === v).length;
  lines.push('', `${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed: ${report.verdict === 'fail' ? 'fix the failures before running' : 'ready to run'}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Credentials first: without any, every check would fail and each target's role would be blamed. Resolving the
 * SDK's credential chain makes no AWS call (only the chain's own sources: environment, profiles, instance metadata).
 */
async function requireCredentials(sts: STSClient): Promise<void> {
  try {
    await sts.config.credentials();
  } catch (error) {
    if (error instanceof Error && error.name === 'CredentialsProviderError') throw new CliError(noCredentialsMessage(error), 1);
    throw error;
  }
}

export async function doctorCommand(options: DoctorOptions, io: { stdout: Output }): Promise<number> {
  const file = readInputFile(options.input);
  const region = commandRegion(options.region, file.input.source?.region);
  // The checks run the functions' own code in this process.
  return inFunctionsEnvironment(options.endpointUrl, async () => {
    const sts = new STSClient({ region });
    try {
      return await checkAll(file.raw, sts);
    } finally {
      sts.destroy();
    }
  });

  async function checkAll(raw: unknown, sts: STSClient): Promise<number> {
    await requireCredentials(sts);
    const clients = createClientFactory(region);
    const report = await doctor(raw, clients, {
      pipelineRegion: region,
      inputPath: options.input,
      builderAccountId: async () => (await sts.send(new GetCallerIdentityCommand({}))).Account ?? '',
    }).catch((error: unknown) => {
      // A targets document that cannot be read or is invalid: bad input, before any check.
      if (error instanceof InvalidInputError) throw new CliError(error.message, 2);
      throw error;
    });
    io.stdout.write(options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderDoctor(report));
    return report.verdict === 'fail' ? 1 : 0;
  }
}
