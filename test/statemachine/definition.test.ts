/** Static checks of the definition: what every Task, Choice and loop must have, and that error names are ours. */
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import {
  LAMBDA_SERVICE_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  STATE_MACHINE_ERROR_NAMES,
  TERMINAL_ERROR_NAMES,
} from '../../functions/shared/errors';
import { allStates, deployedDefinition, loadDefinition } from '../../local/asl';

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

const loaded = loadDefinition();
const map = loaded.distributedMaps.DistributeTargets;
if (!map) throw new Error('DistributeTargets is not a Distributed Map');
const definition = deployedDefinition();
/** Every state of the run's definition, its Distributed Map's ItemProcessor (the per-target flow) included. */
const states = allStates(definition);
const byName = new Map(states);
const lambdaTasks = new Set([...Object.keys(loaded.taskFunctions), ...Object.keys(map.child.taskFunctions)]);
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
  it('is valid Amazon States Language, the Distributed Map and its ItemProcessor included', () => {
    const result = aslValidator(structuredClone(definition), { checkArn: false, checkPaths: true });
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('never names a state twice, inside the ItemProcessor or out', () => {
    expect(new Set(states.map(([n]) => n)).size).toBe(states.length);
  });

  it('runs every target as a child execution of a Distributed Map that reads the targets and writes its results to S3', () => {
    const state = byName.get('DistributeTargets') as State;
    expect(state.ItemProcessor).toMatchObject({ ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, StartAt: 'IsRekeyTarget' });
    expect(state.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { 'Bucket.$': '$.files.bucket', 'Key.$': '$.files.targetsKey' },
    });
    expect(state.ResultWriter).toEqual({ Resource: 'arn:aws:states:::s3:putObject', Parameters: { 'Bucket.$': '$.files.bucket', 'Prefix.$': '$.files.resultsPrefix' } });
    expect(state.MaxConcurrencyPath).toBe('$.maxConcurrency');
    // One broken account never stops the others: no failure count fails the Map Run.
    expect(state.ToleratedFailurePercentage).toBe(100);
    // The Map Run's label names it in the console and in its children's ARNs (at most 40 characters).
    expect(state.Label).toMatch(/^[A-Za-z0-9-_]{1,40}$/);
    expect(state.ItemSelector).toEqual({
      item: { 'executionName.$': '$.executionName', 'source.$': '$.source', 'settings.$': '$.settings', 'target.$': '$$.Map.Item.Value' },
      // What a target makes starts empty here (no first Pass state in the child), so a failed line can keep it.
      copy: { imageId: null, kmsKeyArn: null },
      grant: { grantId: null },
      launch: { instanceId: null },
    });
    expect(state.ResultPath).toBe('$.mapRun');
  });

  it('gives every Task a timeout, Lambda-service retries first with full jitter and a delay cap, and our retryable names', () => {
    const tasks = states.filter(([n, s]) => s.Type === 'Task' && lambdaTasks.has(n));
    expect(tasks.length).toBeGreaterThanOrEqual(9);
    for (const [name, task] of tasks) {
      expect(task.TimeoutSeconds, name).toBeTypeOf('number');
      const retry = task.Retry as Retrier[];
      // Every Lambda service error, Lambda.ClientExecutionTimeoutException included (AWS's recommended retrier).
      expect(retry?.[0]?.ErrorEquals, name).toEqual(expect.arrayContaining([...LAMBDA_SERVICE_ERROR_NAMES]));
      expect(retry?.[0]?.ErrorEquals, name).toContain('Lambda.ClientExecutionTimeoutException');
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
      expect(conditions.some((c) => typeof c.NumericLessThan === 'number' && (c.NumericLessThan as number) <= 60), waitName).toBe(true);
      expect(conditions.some((c) => typeof c.TimestampLessThanPath === 'string'), waitName).toBe(true);
      expect(closing?.Default, waitName).toMatch(/TimedOut$/);
    }
  });

  it('catches every failure inside a target, cleans up, records it and fails only that child execution', () => {
    const processor = (byName.get('DistributeTargets') as State).ItemProcessor as { StartAt: string; States: Record<string, State> };
    // No Parallel around the target's steps: a Catch on one keeps the state (the copy, the grant, the launch check).
    expect(Object.values(processor.States).some((st) => st.Type === 'Parallel')).toBe(false);
    // A child starts with what it makes recorded as nothing yet (the Map's ItemSelector), so a failed line can keep it.
    expect((byName.get('DistributeTargets') as State).ItemSelector).toMatchObject({ copy: { imageId: null, kmsKeyArn: null }, grant: { grantId: null }, launch: { instanceId: null } });
    const reachable = (from: string) => {
      const seen = new Set<string>();
      const walk = (name: string) => {
        const st = processor.States[name];
        if (seen.has(name) || !st) return;
        seen.add(name);
        for (const next of successors(st)) walk(next);
      };
      walk(from);
      return seen;
    };
    const failurePath = reachable('FindTargetCopy');
    const targetPath = [...reachable(processor.StartAt)].filter((n) => !failurePath.has(n));
    for (const name of targetPath) {
      const st = processor.States[name] as State;
      expect(st.Type, name).not.toBe('Fail');
      if (st.Type !== 'Task') continue;
      const catcher = (st.Catch as { ErrorEquals: string[]; ResultPath: string; Next: string }[])[0];
      expect(catcher?.ErrorEquals, name).toEqual(['States.ALL']);
      expect(catcher?.Next, name).toBe(name === 'ApplyRetention' ? 'RecordRetentionFailure' : 'FindTargetCopy');
      expect(catcher?.ResultPath, name).toBe(name === 'ApplyRetention' ? '$.retentionError' : '$.error');
    }
    for (const name of ['ImageCopyTimedOut', 'LaunchCheckTimedOut']) expect(processor.States[name], name).toMatchObject({ Type: 'Pass', ResultPath: '$.error', Next: 'FindTargetCopy' });
    // The failed line keeps what the target made: its copy (else the one found by tags), the key, the grant, the instance.
    expect(processor.States.RecordTargetFailure?.Parameters).toMatchObject({
      'imageId.$': '$.copy.imageId',
      'kmsKeyArn.$': '$.copy.kmsKeyArn',
      'grantId.$': '$.grant.grantId',
      launchCheck: { 'instanceId.$': '$.launch.instanceId' },
    });
    expect(processor.States.UseFoundCopy).toMatchObject({ ResultPath: '$.copy', Next: 'RecordTargetFailure' });
    expect(processor.States.RecordTargetFailure?.Next).toBe('PrepareTargetFailure');
    expect(processor.States.TargetFailed).toMatchObject({ Type: 'Fail', ErrorPath: '$.error', CausePath: '$.cause' });
    expect([...failurePath].filter((n) => processor.States[n]?.Type === 'Fail')).toEqual(['TargetFailed']);
  });

  it('unshares the source on every path after sharing', () => {
    for (const name of ['ShareSource', 'DistributeTargets']) {
      const catches = (byName.get(name)?.Catch as { Next: string }[]) ?? [];
      expect(catches.map((c) => c.Next), name).toContain('UnshareAfterFailure');
    }
    // After the fan-out, a distribution (the only mode that shared) always reaches UnshareSource.
    expect(byName.get('DistributeTargets')?.Next).toBe('IsUnshareNeeded');
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
