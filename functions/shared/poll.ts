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
 * unavailable: the next look, one poll later, is as good as a retry. Failing the invocation instead would throw away
 * the looking done so far and leave the copy to the state machine's Retry backoff (up to 120 s) and a new approach.
 */
const transient = (error: unknown): boolean => error instanceof AwsThrottlingError || error instanceof AwsServiceUnavailableError;

/**
 * Look again every `pollSeconds` while `pending(last)` holds and the next look is due by `until` (epoch ms).
 * A transient failure of one look keeps the last known state and looks again at the next poll; if the last look
 * failed that way, its error is thrown, so the state machine's Retry looks again soon rather than waiting.
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
  while (options.pending(last) && clock.now().getTime() + options.pollSeconds * 1000 <= options.until) {
    await sleep(options.pollSeconds * 1000);
    try {
      last = await look(last);
      failed = undefined;
    } catch (error) {
      if (!transient(error)) throw error;
      failed = error;
      logger.warn('A look failed transiently; looking again at the next poll', { error: (error as Error).message });
    }
  }
  if (failed !== undefined) throw failed;
  return last;
}
