/** Static checks of the definition: what every Task, Choice and loop must have, and that error names are ours. */
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import {
  LAMBDA_SERVICE_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  STATE_MACHINE_ERROR_NAMES,
  TERMINAL_ERROR_NAMES,
} from '../../functions/shared/errors';
import { allStates, loadDefinition } from '../../local/asl';

type State = Record<string, unknown>;
interface Retrier {
  ErrorEquals: string[];
  MaxAttempts?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: string;
  BackoffRate?: number;
}
interface ChoiceRule {
  Next?: string;
  And?: ChoiceRule[];
  Variable?: string;
  [op: string]: unknown;
}

const { definition } = loadDefinition();
const states = allStates(definition);
const byName = new Map(states);
const known = new Set<string>([
  ...LAMBDA_SERVICE_ERROR_NAMES,
  ...RETRYABLE_ERROR_NAMES,
  ...TERMINAL_ERROR_NAMES,
  ...STATE_MACHINE_ERROR_NAMES,
  'States.ALL',
  'States.Timeout',
]);

/** Names of the states reachable from `from` in one step. */
function successors(state: State): string[] {
  const out: string[] = [];
  if (typeof state.Next === 'string') out.push(state.Next);
  if (typeof state.Default === 'string') out.push(state.Default);
  for (const rule of (state.Choices as ChoiceRule[] | undefined) ?? []) if (rule.Next) out.push(rule.Next);
  for (const c of (state.Catch as { Next: string }[] | undefined) ?? []) out.push(c.Next);
  return out;
}

describe('the state machine definition', () => {
  it('is valid Amazon States Language', () => {
    const result = aslValidator(structuredClone(definition), { checkArn: false, checkPaths: true });
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('gives every Task a timeout, Lambda-service retries first with full jitter and a delay cap, and our retryable names', () => {
    const tasks = states.filter(([, s]) => s.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(9);
    for (const [name, task] of tasks) {
      expect(task.TimeoutSeconds, name).toBeTypeOf('number');
      const retry = task.Retry as Retrier[];
      expect(retry?.[0]?.ErrorEquals, name).toEqual(expect.arrayContaining([...LAMBDA_SERVICE_ERROR_NAMES.slice(0, 4)]));
      for (const r of retry) {
        expect(r.JitterStrategy, name).toBe('FULL');
        expect(r.MaxDelaySeconds, name).toBeGreaterThan(0);
        expect(r.MaxAttempts, name).toBeGreaterThan(0);
        expect(r.ErrorEquals, `${name} retries a terminal error`).not.toEqual(expect.arrayContaining([...TERMINAL_ERROR_NAMES]));
        for (const e of r.ErrorEquals) expect(TERMINAL_ERROR_NAMES as readonly string[], name).not.toContain(e);
      }
      const retried = retry.flatMap((r) => r.ErrorEquals);
      expect(retried, name).toEqual(expect.arrayContaining(['AwsThrottlingError', 'AwsServiceUnavailableError']));
    }
  });

  it('retries copy concurrency limits on CopyEncryptImage and eventual consistency where it happens', () => {
    const retried = (state: string) => ((byName.get(state)?.Retry as Retrier[]) ?? []).flatMap((r) => r.ErrorEquals);
    expect(retried('CopyEncryptImage')).toContain('CopyLimitExceededError');
    expect(retried('GetImageState')).toContain('ImageNotYetVisibleError');
    expect(retried('CreateKmsGrant')).toContain('GrantNotYetPropagatedError');
  });

  it('names only errors the pipeline knows in every Retry and Catch', () => {
    for (const [name, state] of states) {
      for (const r of [...((state.Retry as Retrier[]) ?? []), ...((state.Catch as Retrier[]) ?? [])]) {
        for (const e of r.ErrorEquals) expect(known.has(e), `${name}: ${e}`).toBe(true);
      }
      if (state.Type === 'Fail' && typeof state.Error === 'string') expect(known.has(state.Error), name).toBe(true);
    }
  });

  it('gives every Choice a Default and names Choices Is/Has', () => {
    for (const [name, state] of states.filter(([, s]) => s.Type === 'Choice')) {
      expect(state.Default, name).toBeTypeOf('string');
      expect(name).toMatch(/^(Is|Has|Have)[A-Z]/);
    }
  });

  it('bounds every poll loop by a static attempt ceiling and a deadline', () => {
    // A loop is a Wait whose successors lead back to it; the Choice that closes it must cap attempts and time.
    const waits = states.filter(([, s]) => s.Type === 'Wait');
    expect(waits.map(([n]) => n).sort()).toEqual(['WaitForImage', 'WaitForLaunch']);
    for (const [waitName] of waits) {
      const seen = new Set<string>();
      const queue = [waitName];
      let closing: State | undefined;
      while (queue.length) {
        const current = queue.shift() as string;
        const state = byName.get(current);
        if (!state || seen.has(current)) continue;
        seen.add(current);
        if (state.Type === 'Choice' && successors(state).includes(waitName)) closing = state;
        else queue.push(...successors(state));
      }
      expect(closing, waitName).toBeDefined();
      const loopRule = (closing?.Choices as ChoiceRule[]).find((r) => r.Next === waitName);
      const conditions = loopRule?.And ?? [];
      expect(conditions.some((c) => typeof c.NumericLessThan === 'number' && (c.NumericLessThan as number) <= 200), waitName).toBe(true);
      expect(conditions.some((c) => typeof c.TimestampLessThanPath === 'string'), waitName).toBe(true);
      expect(closing?.Default, waitName).toMatch(/TimedOut$/);
    }
  });

  it('catches every failure inside an iteration so the other targets go on', () => {
    const map = byName.get('DistributeToTargets') as State;
    const processor = map.ItemProcessor as { StartAt: string; States: Record<string, State> };
    const first = processor.States[processor.StartAt] as State;
    expect(first.Type).toBe('Parallel');
    expect((first.Catch as Retrier[])[0]?.ErrorEquals).toEqual(['States.ALL']);
    expect(map.MaxConcurrencyPath).toBe('$.maxConcurrency');
  });

  it('unshares the source on every path after sharing', () => {
    for (const name of ['ShareSource', 'DistributeToTargets']) {
      const catches = (byName.get(name)?.Catch as { Next: string }[]) ?? [];
      expect(catches.map((c) => c.Next), name).toContain('UnshareAfterFailure');
    }
    // After the fan-out, a distribution (the only mode that shared) always reaches UnshareSource.
    expect(byName.get('DistributeToTargets')?.Next).toBe('IsUnshareNeeded');
    const unshareChoice = byName.get('IsUnshareNeeded') as { Default: string; Choices: ChoiceRule[] };
    expect(unshareChoice.Default).toBe('UnshareSource');
    expect(unshareChoice.Choices.map((c) => [c.Variable, c.StringEquals, c.Next])).toEqual([['$.settings.mode', 'rekey', 'NothingToUnshare']]);
    const shareChoice = byName.get('IsSharingNeeded') as { Default: string; Choices: ChoiceRule[] };
    expect(shareChoice.Default).toBe('ShareSource');
    expect(((byName.get('UnshareSource')?.Catch as { Next: string }[]) ?? [])[0]?.Next).toBe('RecordUnshareFailure');
  });

  it('uses PascalCase state names and a Comment on every state', () => {
    for (const [name, state] of states) {
      expect(name).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(state.Comment, name).toBeTypeOf('string');
    }
  });
});
