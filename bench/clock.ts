/**
 * The benchmark's virtual time. Targets are independent, so each (account, region) has its own clock, plus one
 * for the run's own states. Every Lambda invocation runs inside the context of the clock it belongs to (its
 * item's target, else the run), so `now()` and `sleep()` given to the handlers read and move that clock.
 * Targets start together, at the run clock's time when the first of them is looked at (the plan runs them all
 * at once); the run clock catches up with the latest target when a run-level state runs after them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export const EPOCH = Date.parse('2026-11-29T00:00:00Z');

export class Clock {
  constructor(
    readonly key: string,
    public ms: number,
  ) {}
}

interface TargetRef {
  accountId?: unknown;
  region?: unknown;
}

/** The target an event or state input is about (`item.target`), if any. */
export function targetOf(payload: unknown): { accountId: string; region: string } | undefined {
  const target = (payload as { item?: { target?: TargetRef } } | null)?.item?.target;
  if (typeof target?.accountId !== 'string' || typeof target.region !== 'string') return undefined;
  return { accountId: target.accountId, region: target.region };
}

export class VirtualClocks {
  readonly run: Clock;
  private readonly targets = new Map<string, Clock>();
  private readonly context = new AsyncLocalStorage<Clock>();

  constructor(readonly start = EPOCH) {
    this.run = new Clock('run', start);
  }

  /** The clock of a target (created at the run clock's time: targets start together). */
  target(accountId: string, region: string): Clock {
    const key = `${accountId}/${region}`;
    let clock = this.targets.get(key);
    if (!clock) {
      clock = new Clock(key, this.run.ms);
      this.targets.set(key, clock);
    }
    return clock;
  }

  /** The clock an account and region's AWS calls read: its target's, else the run's (the builder account). */
  of(accountId: string, region: string): Clock {
    return this.targets.get(`${accountId}/${region}`) ?? this.run;
  }

  /** The latest time any target reached. */
  latestTarget(): number {
    let latest = this.run.ms;
    for (const c of this.targets.values()) latest = Math.max(latest, c.ms);
    return latest;
  }

  /** The clock a Lambda event or Wait input runs on; the run clock first waits for every target so far. */
  forPayload(payload: unknown): Clock {
    const target = targetOf(payload);
    if (target) return this.target(target.accountId, target.region);
    this.run.ms = this.latestTarget();
    return this.run;
  }

  /** Run `fn` with `clock` as the current one. */
  within<T>(clock: Clock, fn: () => Promise<T>): Promise<T> {
    return this.context.run(clock, fn);
  }

  current(): Clock {
    return this.context.getStore() ?? this.run;
  }

  readonly now = (): Date => new Date(this.current().ms);

  readonly sleep = async (ms: number): Promise<void> => {
    this.current().ms += ms;
  };

  get targetCount(): number {
    return this.targets.size;
  }
}

/** A deterministic number in [0, 1) from a string (FNV-1a, then a 32-bit mix). */
export function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}
