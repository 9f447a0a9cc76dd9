/**
 * Looking again within one invocation: GetImageState at a nearly done copy, GetLaunchState at a starting instance.
 * One invocation that keeps looking costs fewer state transitions than more trips round the state machine's loop.
 */

/** The functions' clock: `now` reads it, `sleep` waits on it (a virtual clock in the tests and the benchmark). */
export interface Clock {
  now: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Look again every `pollSeconds` while `pending(last)` holds and the next look is due by `until` (epoch ms). */
export async function keepLooking<T>(
  first: T,
  options: { pending: (last: T) => boolean; until: number; pollSeconds: number },
  clock: Clock,
  look: (last: T) => Promise<T>,
): Promise<T> {
  const sleep = clock.sleep ?? timer;
  let last = first;
  while (options.pending(last) && clock.now().getTime() + options.pollSeconds * 1000 <= options.until) {
    await sleep(options.pollSeconds * 1000);
    last = await look(last);
  }
  return last;
}
