/**
 * The two pipelines the benchmark compares, both the real definitions and handlers:
 * - ours: the definitions as they deploy (waits sized from the copy's progress, status checks that keep looking
 *   when a copy or an instance is nearly ready);
 * - baseline: the naive loop, one task per poll: every WaitForImage and WaitForLaunch lasts a fixed 15 s, the
 *   status checks look once (approachSeconds 0), and the loops' attempt ceilings are raised so that a long copy
 *   is not cut short (the deadline still applies).
 */
import { makeHandler as copyEncrypt } from '../functions/copy-encrypt';
import { makeHandler as verifyLaunch } from '../functions/verify-launch';
import { createClientFactory } from '../functions/shared/clients';
import { allStates, loadDefinition, type LoadedDefinition, type TaskHandler } from '../local/asl';
import { pipelineHandlers } from './handlers';

export type Variant = 'ours' | 'baseline';
export const VARIANTS: readonly Variant[] = ['ours', 'baseline'];

export const BASELINE_POLL_SECONDS = 15;
const POLL_WAITS = ['WaitForImage', 'WaitForLaunch'];
const ATTEMPT_VARIABLES = ['$.copy.attempt', '$.launch.attempt'];
const RAISED_CEILING = 1_000_000;

type Rule = Record<string, unknown>;

function raiseCeilings(rule: Rule): number {
  let raised = 0;
  if (typeof rule.Variable === 'string' && ATTEMPT_VARIABLES.includes(rule.Variable) && 'NumericLessThan' in rule) {
    rule.NumericLessThan = RAISED_CEILING;
    raised += 1;
  }
  for (const key of ['And', 'Or']) for (const inner of (rule[key] as Rule[] | undefined) ?? []) raised += raiseCeilings(inner);
  if (rule.Not) raised += raiseCeilings(rule.Not as Rule);
  return raised;
}

/** Every definition of a loaded one: itself, its Distributed Maps' child definitions and the children it starts. */
export function definitionsOf(loaded: LoadedDefinition): LoadedDefinition[] {
  return [
    loaded,
    ...Object.values(loaded.distributedMaps).flatMap((m) => definitionsOf(m.child)),
    ...Object.values(loaded.childTasks).flatMap(definitionsOf),
  ];
}

/** The baseline's definitions: a deep copy with fixed 15 s poll waits and the attempt ceilings raised. */
export function baselineDefinition(loaded: LoadedDefinition): LoadedDefinition {
  const copy = structuredClone(loaded);
  const waits = new Set<string>();
  let ceilings = 0;
  for (const l of definitionsOf(copy)) {
    for (const [name, state] of allStates(l.definition)) {
      if (state.Type === 'Wait' && POLL_WAITS.includes(name)) {
        for (const key of ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath']) delete state[key];
        state.Seconds = BASELINE_POLL_SECONDS;
        waits.add(name);
      }
      if (state.Type === 'Choice') for (const rule of (state.Choices as Rule[] | undefined) ?? []) ceilings += raiseCeilings(rule);
    }
  }
  // The transformation must find what it changes, else the baseline silently measures something else.
  const missing = POLL_WAITS.filter((w) => !waits.has(w));
  if (missing.length > 0) throw new Error(`baseline: no Wait state ${missing.join(', ')} in the definitions`);
  if (ceilings < ATTEMPT_VARIABLES.length) throw new Error(`baseline: found ${ceilings} attempt ceilings, expected ${ATTEMPT_VARIABLES.length}`);
  return copy;
}

export function variantDefinition(variant: Variant): LoadedDefinition {
  const loaded = loadDefinition();
  return variant === 'baseline' ? baselineDefinition(loaded) : loaded;
}

/**
 * The functions, on the given clock; the baseline's status checks look once per invocation. Both variants build
 * CopyEncrypt and VerifyLaunch here, on one client factory of their own, so that they assume the target roles
 * the same number of times (sts:AssumeRole counts stay comparable).
 */
export function variantHandlers(variant: Variant, now: () => Date, sleep: (ms: number) => Promise<void>): Record<string, TaskHandler> {
  const clients = createClientFactory('eu-west-1');
  const approach = variant === 'baseline' ? { approachSeconds: 0 } : {};
  return {
    ...pipelineHandlers(now, sleep),
    copyEncrypt: copyEncrypt({ clients, now, sleep, ...approach }),
    verifyLaunch: verifyLaunch({ clients, now, sleep, ...approach }),
  };
}
