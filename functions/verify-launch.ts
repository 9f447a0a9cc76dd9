/**
 * States: StartLaunchCheck, GetLaunchState, CleanUpLaunchCheck, CleanUpFailedTarget. Serverless function: verifyLaunch.
 * Proves the copy boots with its root volume encrypted by the target key, inside the
 * target account. One module per action, behind the dispatch below:
 * - start (functions/verify-launch/start.ts): mode "auto-scaling" (default, the path that needs the Auto Scaling
 *   grant) makes a launch template and an Auto Scaling group of one; mode "run-instances" launches one instance; mode
 *   "none" returns `skipped`. Names and instance tags derive from execution and target, so cleanup finds them on every path.
 * - check (functions/verify-launch/check.ts): pending until the instance runs; then checks the root volume's
 *   encryption and key. A launch that ends terminated (StateReason Client.InternalError,
 *   Client.InvalidKMSKey.InvalidState) is LaunchFailedError.
 * - cleanup (functions/shared/launch-check.ts, which the janitor and `ami-pipeline cleanup` share): deletes the group
 *   (ForceDelete) and template and terminates every instance of the check. Idempotent.
 * Throws LaunchFailedError, AccessDeniedError (terminal); throttling and 5xx (retryable).
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import * as z from 'zod';
import { clientFactory } from './shared/client-factory';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { cleanUpLaunchCheck, type CleanupResult } from './shared/launch-check';
import { copyRefSchema, parsePayload, targetItemSchema } from './shared/plan';
import { checkLaunch } from './verify-launch/check';
import { launchStateSchema, type LaunchState, type VerifyLaunchDeps } from './verify-launch/launch-state';
import { startLaunchCheck } from './verify-launch/start';

export { checkLaunch, cleanUpLaunchCheck, startLaunchCheck, type CleanupResult, type LaunchState, type VerifyLaunchDeps };

export const verifyLaunchEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), item: targetItemSchema, copy: copyRefSchema }),
  z.object({ action: z.literal('check'), item: targetItemSchema, copy: copyRefSchema, launch: launchStateSchema }),
  z.object({ action: z.literal('cleanup'), item: targetItemSchema }),
]);
export type VerifyLaunchEvent = z.infer<typeof verifyLaunchEventSchema>;

export const defaultDeps: VerifyLaunchDeps = { clients: clientFactory({ ec2: EC2Client, autoScaling: AutoScalingClient }), now: () => new Date() };

export async function verifyLaunch(event: VerifyLaunchEvent, deps: VerifyLaunchDeps = defaultDeps): Promise<LaunchState | CleanupResult> {
  switch (event.action) {
    case 'start':
      return startLaunchCheck(event.item, event.copy, deps);
    case 'check':
      return checkLaunch(event.item, event.copy, event.launch, deps);
    case 'cleanup':
      return cleanUpLaunchCheck(event.item, deps);
  }
}

export const makeHandler = (deps: VerifyLaunchDeps = defaultDeps) =>
  lambdaHandler('VerifyLaunch', itemLogContext, (event) => verifyLaunch(parsePayload(verifyLaunchEventSchema, event, 'event'), deps));

export const handler = makeHandler();
