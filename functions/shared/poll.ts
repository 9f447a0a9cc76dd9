/**
 * Looking again within one invocation: GetImageState at a nearly done copy, GetLaunchState at a starting instance.
 * One invocation that keeps looking costs fewer state transitions than more trips round the state machine's loop.
 */
import { AwsServiceUnavailableError, AwsThrottlingError } from './errors';
import { logger } from './logger';

/** The functions' clock: `now` reads it, `sleep` waits on it (a virtual clock in the tests and the benchmark). */
export interface Clock {
  now: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A look that EC2 throttled (RequestLimitExceeded once the SDK's own attempts are spent) or that met a service
 * unavailable: looking again soon, in this invocation, is as good as a retry. Failing the invocation instead would
 * throw away the looking done so far and leave the copy to the state machine's Retry backoff (up to 120 s).
 */
const transient = (error: unknown): boolean => error instanceof AwsThrottlingError || error instanceof AwsServiceUnavailableError;

/** After a transiently failed look, the next comes this much sooner than a poll: 2 s, doubling, at most the poll. */
export const TRANSIENT_BACKOFF_SECONDS = 2;

/**
 * Look again every `pollSeconds` while `pending(last)` holds and the next look is due by `until` (epoch ms).
 * A transient failure of one look keeps the last known state and looks again after a short backoff (2 s, doubling,
 * at most a poll); if the last look failed that way, its error is thrown, so the state machine's Retry looks again.
 */
export async function keepLooking<T>(
  first: T,
  options: { pending: (last: T) => boolean; until: number; pollSeconds: number },
  clock: Clock,
  look: (last: T) => Promise<T>,
): Promise<T> {
  const sleep = clock.sleep ?? timer;
  let last = first;
  let failed: unknown;
  let failures = 0;
  const nextWait = () => (failures === 0 ? options.pollSeconds : Math.min(options.pollSeconds, TRANSIENT_BACKOFF_SECONDS * 2 ** (failures - 1)));
  while (options.pending(last) && clock.now().getTime() + nextWait() * 1000 <= options.until) {
    await sleep(nextWait() * 1000);
    try {
      last = await look(last);
      failed = undefined;
      failures = 0;
    } catch (error) {
      if (!transient(error)) throw error;
      failed = error;
      failures += 1;
      logger.warn('A look failed transiently; looking again shortly', { error: (error as Error).message, failures });
    }
  }
  if (failed !== undefined) throw failed;
  return last;
}
