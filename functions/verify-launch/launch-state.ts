/** What the launch check's actions share: the state the poll loop carries, the dependencies, how a failed launch reads. */
import * as z from 'zod';
import type { ClientFactory } from '../shared/client-factory';
import { LaunchFailedError } from '../shared/errors';
import type { Clock } from '../shared/poll';
import type { TargetItem } from '../shared/plan';
import { where } from '../shared/target';

export const launchStateSchema = z.object({
  mode: z.enum(['auto-scaling', 'run-instances', 'none']),
  state: z.enum(['pending', 'verified', 'skipped']),
  name: z.string().nullable(),
  instanceId: z.string().nullable(),
  instanceType: z.string().nullable(),
  subnetId: z.string().nullable(),
  volumeId: z.string().nullable(),
  attempt: z.number().int(),
  waitSeconds: z.number().int(),
  startedAt: z.string(),
  deadline: z.string(),
  checkedAt: z.string(),
});
export type LaunchState = z.infer<typeof launchStateSchema>;

/** `sleep`: how the check waits between its looks at a starting instance (default: a timer). */
export interface VerifyLaunchDeps extends Clock {
  clients: ClientFactory;
  /** How long one check keeps looking (default LAUNCH_WAIT.approach; 0: one look per check). */
  approachSeconds?: number;
}
const KEY_FIX =
  'The instance could not use the KMS key of its root volume. Check that the key is enabled, that its policy lets the ' +
  'account use it, and that the grant for AWSServiceRoleForAutoScaling exists (CreateKmsGrant) and has propagated; then run again.';

export function launchFailure(item: TargetItem, what: string, code: string, message: string): LaunchFailedError {
  const fix = /KMS|InternalError|Client error on launch/i.test(`${code} ${message}`)
    ? KEY_FIX
    : 'Check the instance type, the subnet and the account limits, then run again.';
  return new LaunchFailedError(`Launch check in ${where(item)}: ${what} (${code}: ${message}). ${fix}`, { aws: { code, message } });
}

