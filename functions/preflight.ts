/**
 * States: PreflightTarget. Serverless function: preflight.
 * PreflightTarget: the first step of every target. Runs the doctor's checks inside the target account and region
 * (role, key, key policy, Auto Scaling role, subnet, EBS defaults, copy headroom) so a broken target fails in
 * seconds with the doctor's message instead of after a copy. Takes { item }; returns the warnings.
 * Throws PreflightFailedError listing every failed check with its fix, TargetRoleNotAssumableError when the
 * account cannot be entered; throttling and 5xx are retryable.
 */
import * as z from 'zod';
import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { KMSClient } from '@aws-sdk/client-kms';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { PreflightFailedError, TargetNotYetDeployedError, TargetRoleNotAssumableError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { checkTarget, type Check } from './shared/preflight';
import { targetClients } from './shared/target';

export const preflightEventSchema = z.object({ item: targetItemSchema });
export type PreflightEvent = z.infer<typeof preflightEventSchema>;

export interface PreflightResult {
  passed: number;
  warnings: string[];
}

export interface PreflightDeps {
  clients: ClientFactory;
}
export const defaultDeps: PreflightDeps = { clients: clientFactory({ ec2: EC2Client, kms: KMSClient, iam: IAMClient }) };

const line = (c: Check) => `${c.check}: ${c.message}${c.awsError ? ` (${c.awsError})` : ''}${c.fix ? `. Fix: ${c.fix}` : ''}`;

export async function preflightTarget(item: TargetItem, deps: PreflightDeps = defaultDeps): Promise<PreflightResult> {
  const clients = targetClients(item, deps);
  // An account the pipeline cannot enter fails as such (TargetRoleNotAssumableError), not as a failed check.
  try {
    await clients.kms(item.target.region).config.credentials();
  } catch (error) {
    if (item.settings.awaitDeployment && error instanceof TargetRoleNotAssumableError) {
      throw notYetDeployed(item, `its role ${item.settings.targetRoleName} cannot be assumed yet (${error.aws?.code ?? 'AccessDenied'})`, error);
    }
    throw error;
  }
  const checks = await checkTarget(item, clients);
  const failed = checks.filter((c) => c.verdict === 'fail');
  const missingKey = failed.find((c) => c.check === 'kms-key' && c.awsError?.startsWith('NotFoundException'));
  if (item.settings.awaitDeployment && missingKey) throw notYetDeployed(item, `its key ${item.target.kmsKey} does not exist yet in ${item.target.region}`);
  const warnings = checks.filter((c) => c.verdict === 'warn').map(line);
  for (const warning of warnings) logger.warn('Preflight warning', { warning });
  if (failed.length > 0) {
    throw new PreflightFailedError(`Preflight of ${item.target.accountId}/${item.target.region} failed: ${failed.map(line).join(' | ')}`);
  }
  return { passed: checks.length - warnings.length, warnings };
}

/**
 * A new account (a new-account run, settings.awaitDeployment) whose role or key the StackSet has not deployed yet:
 * retryable, so PreflightTarget's TargetNotYetDeployedError retrier waits (about an hour at most); the last one fails the target.
 */
function notYetDeployed(item: TargetItem, what: string, cause?: TargetRoleNotAssumableError): TargetNotYetDeployedError {
  const { accountId, region } = item.target;
  return new TargetNotYetDeployedError(
    `New account ${accountId}: ${what}. templates/target-account.yml reaches a new account through the StackSet's automatic deployment, ` +
      `asynchronously, so PreflightTarget retries for about an hour (10 tries, 60 s growing to 600 s apart). If this is the target's final error, ` +
      `the StackSet instance for ${accountId}/${region} did not deploy: check the StackSet's operations (aws cloudformation list-stack-set-operations) ` +
      `and that it deploys to this account's OU and to ${region}.`,
    cause ? { cause, ...(cause.aws ? { aws: cause.aws } : {}) } : {},
  );
}

export const makeHandler = (deps: PreflightDeps = defaultDeps) =>
  lambdaHandler('PreflightTarget', itemLogContext, (event) => preflightTarget(parsePayload(preflightEventSchema, event, 'event').item, deps));

export const handler = makeHandler();
