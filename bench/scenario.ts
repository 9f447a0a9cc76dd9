/**
 * One benchmark scenario: the real definitions (ours or the baseline) run locally against the scripted backend on
 * virtual clocks, N targets whose copies take about T minutes. Each Lambda handler is wrapped per state: it runs on
 * its target's clock, costs that clock a fixed latency, and when it throws, moves the clock by the delay the
 * state's Retry would wait (full jitter drawn from a hash, so runs repeat). The Wait states move the clock instead
 * of sleeping. Everything is measured from what the run logged and what the backend was asked.
 */
import { performance } from 'node:perf_hooks';
import { allStates, runDefinition, type Json, type LoadedDefinition, type TaskHandler } from '../local/asl';
import { awsHistoryEvents, historyShape } from '../local/history';
import { DEFAULT_BACKEND, scriptedBackend, type BackendOptions } from './backend';
import { unitHash, VirtualClocks, type Clock } from './clock';
import { definitionsOf, variantDefinition, variantHandlers, type Variant } from './variants';
import { costOf, type Cost } from './cost';
import { manifestSchema } from '../functions/shared/manifest-schema';

/** Simulated time one Lambda invocation costs besides its AWS calls (ms). */
export const LAMBDA_MS = 150;

export interface Scenario {
  variant: Variant;
  targets: number;
  copyMinutes: number;
}

export interface ScenarioResult extends Scenario {
  status: string;
  succeeded: number;
  failed: number;
  failures: Record<string, number>;
  executions: number;
  transitions: number;
  transitionsPerTarget: number;
  lambdaInvocations: number;
  lambdaPerTarget: number;
  lambdaByFunction: Record<string, number>;
  /** Busy time of each function's invocations on the virtual clock (ms): what Lambda bills as duration. */
  lambdaBusyMsByFunction: Record<string, number>;
  /** Requests to the runs bucket, by S3 command. */
  s3Requests: Record<string, number>;
  /** In US dollars (bench/cost.ts, bench/prices.json): the whole run, and per target. */
  cost: Cost;
  costPerTarget: number;
  /** Trips round the two poll loops, per target (GetImageState and GetLaunchState entered). */
  copyPollsPerTarget: number;
  launchPollsPerTarget: number;
  apiCalls: number;
  apiCallsPerTarget: number;
  /** Per target, by "service:Command". */
  apiCallsByOperation: Record<string, number>;
  throttledCalls: number;
  retries: number;
  maxHistoryEvents: number;
  maxHistoryExecution: string;
  /** From a copy being available to the first call that saw it (seconds); `worst` names the target of the max. */
  detection: { samples: number; medianSeconds: number | null; maxSeconds: number | null; worst: string | null };
  makespanSeconds: number;
  idealSeconds: number;
  makespanRatio: number;
  wallMs: number;
}

type RetryRule = { ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number; MaxDelaySeconds?: number; JitterStrategy?: string };

/** What the state's Retry would wait before the next attempt (ms), or null when it would not retry. */
function retryDelayMs(state: Record<string, unknown>, error: string, attempts: number[], jitterKey: string): number | null {
  const rules = (state.Retry as RetryRule[] | undefined) ?? [];
  const i = rules.findIndex((r) => r.ErrorEquals.some((e) => e === error || e === 'States.ALL' || e === 'States.TaskFailed'));
  const rule = rules[i];
  if (!rule) return null;
  const attempt = attempts[i] ?? 0;
  if (attempt >= (rule.MaxAttempts ?? 3)) return null;
  attempts[i] = attempt + 1;
  const interval = Math.min((rule.IntervalSeconds ?? 1) * (rule.BackoffRate ?? 2) ** attempt, rule.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
  return Math.round(interval * 1000 * (rule.JitterStrategy === 'FULL' ? unitHash(`${jitterKey}/${attempt}`) : 1));
}

interface Instrumented {
  definition: LoadedDefinition;
  handlers: Record<string, TaskHandler>;
  invocations: Map<string, number>;
  busyMs: Map<string, number>;
}

/** Give every Task state a handler of its own (`function@State`) running on the clocks. */
function instrument(loaded: LoadedDefinition, handlers: Record<string, TaskHandler>, clocks: VirtualClocks): Instrumented {
  const definition = structuredClone(loaded);
  const out: Record<string, TaskHandler> = {};
  const invocations = new Map<string, number>();
  const busyMs = new Map<string, number>();
  const attempts = new Map<string, number[]>();
  for (const l of definitionsOf(definition)) {
    const states = new Map(allStates(l.definition));
    for (const [stateName, fn] of Object.entries(l.taskFunctions)) {
      const handler = handlers[fn];
      const state = states.get(stateName);
      if (!handler || !state) throw new Error(`no handler for ${fn} (state ${stateName})`);
      const key = `${fn}@${stateName}`;
      l.taskFunctions[stateName] = key;
      out[key] = (event) => {
        const clock: Clock = clocks.forPayload(event);
        return clocks.within(clock, async () => {
          invocations.set(fn, (invocations.get(fn) ?? 0) + 1);
          const startedAt = clock.ms;
          clock.ms += LAMBDA_MS;
          const retryKey = `${clock.key}/${stateName}`;
          const busy = () => busyMs.set(fn, (busyMs.get(fn) ?? 0) + (clock.ms - startedAt));
          try {
            const result = await handler(event);
            busy();
            attempts.delete(retryKey);
            return result;
          } catch (error) {
            // The invocation ends here; the retry delay below is Step Functions waiting, not Lambda time.
            busy();
            const counts = attempts.get(retryKey) ?? [];
            attempts.set(retryKey, counts);
            const delay = retryDelayMs(state, (error as Error).name, counts, retryKey);
            if (delay === null) attempts.delete(retryKey);
            else clock.ms += delay;
            throw error;
          }
        });
      };
    }
  }
  return { definition, handlers: out, invocations, busyMs };
}

function readPath(input: unknown, path: string): unknown {
  return path.replace(/^\$\.?/, '').split('.').filter(Boolean).reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], input);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

export async function runScenario(scenario: Scenario, backendOptions: Partial<BackendOptions> = {}): Promise<ScenarioResult> {
  const started = performance.now();
  const { variant, targets, copyMinutes } = scenario;
  const options: BackendOptions = { ...DEFAULT_BACKEND, ...backendOptions, copyMinutes };
  const clocks = new VirtualClocks();
  const backend = scriptedBackend(targets, clocks, options);
  try {
    const loaded = variantDefinition(variant);
    const instrumented = instrument(loaded, variantHandlers(variant, clocks.now, clocks.sleep), clocks);
    const run = await runDefinition(backend.input, instrumented.handlers, {
      executionName: `bench-${variant}-n${targets}-t${copyMinutes}`,
      definition: instrumented.definition,
      // Only the type and state name of a target's child execution's events are read here; dropping their payloads keeps
      // the baseline at N=1,000 (millions of events) in memory. The parent's events are kept: the summary is read from them.
      onEvent: (event, execution) => {
        if (execution.mapState === undefined || !event.state) return;
        event.state = { name: event.state.name, type: event.state.type };
      },
      waitHandler: async (state, input: Json) => {
        const seconds = typeof state.Seconds === 'number' ? state.Seconds : Number(readPath(input, String(state.SecondsPath)));
        clocks.forPayload(input).ms += (Number.isFinite(seconds) ? seconds : 0) * 1000;
        return input;
      },
    });

    const shape = historyShape(loaded);
    let transitions = 0;
    let retries = 0;
    let copyPolls = 0;
    let launchPolls = 0;
    let maxHistoryEvents = 0;
    let maxHistoryExecution = '';
    for (const execution of run.executions) {
      for (const e of execution.events) {
        if (e.type === 'StateRetried') retries += 1;
        if (e.type !== 'StateEntered') continue;
        transitions += 1;
        if (e.state?.name === 'GetImageState') copyPolls += 1;
        if (e.state?.name === 'GetLaunchState') launchPolls += 1;
      }
      const events = awsHistoryEvents(execution.events, shape);
      if (events > maxHistoryEvents) [maxHistoryEvents, maxHistoryExecution] = [events, execution.name];
    }
    transitions += retries;

    // The manifest's lines name each target's status and error.
    const manifest = run.manifest === undefined ? undefined : manifestSchema.parse(run.manifest);
    const lines = manifest?.results ?? [];
    const failures: Record<string, number> = {};
    for (const line of lines.filter((l) => l.status !== 'succeeded')) {
      const name = line.error?.name ?? 'unknown';
      failures[name] = (failures[name] ?? 0) + 1;
    }
    const succeeded = lines.filter((l) => l.status === 'succeeded').length;
    const failed = targets - succeeded;
    const byOperation: Record<string, number> = {};
    for (const c of backend.aws.calls) byOperation[`${c.service}:${c.command}`] = (byOperation[`${c.service}:${c.command}`] ?? 0) + 1;
    const seen = backend.copies().flatMap((c) => (c.seenAt === null ? [] : [{ target: c.target, delay: (c.seenAt - c.readyAt) / 1000 }]));
    const delays = seen.map((c) => c.delay);
    const worst = seen.reduce<(typeof seen)[number] | null>((w, c) => (w === null || c.delay > w.delay ? c : w), null);
    const ideal = Math.max(...backend.pairs.map((t) => backend.copyMs(t.accountId, t.region))) + options.launchSeconds * 1000;
    const makespan = Math.max(clocks.run.ms, clocks.latestTarget()) - clocks.start;
    const lambdaInvocations = [...instrumented.invocations.values()].reduce((a, b) => a + b, 0);
    const per = (n: number) => n / targets;
    const s3Requests: Record<string, number> = {};
    for (const c of backend.aws.calls) if (c.service === 's3') s3Requests[c.command] = (s3Requests[c.command] ?? 0) + 1;
    const lambdaBusyMsByFunction = Object.fromEntries([...instrumented.busyMs].sort());
    const lambdaByFunction = Object.fromEntries([...instrumented.invocations].sort());
    const cost = costOf({ transitions, lambdaByFunction, lambdaBusyMsByFunction, s3Requests });
    return {
      ...scenario,
      status: manifest?.status ?? run.error?.name ?? 'unknown',
      succeeded,
      failed,
      failures,
      executions: run.executions.length,
      transitions,
      transitionsPerTarget: per(transitions),
      lambdaInvocations,
      lambdaPerTarget: per(lambdaInvocations),
      lambdaByFunction,
      lambdaBusyMsByFunction,
      s3Requests,
      cost,
      costPerTarget: per(cost.total),
      copyPollsPerTarget: per(copyPolls),
      launchPollsPerTarget: per(launchPolls),
      apiCalls: backend.aws.calls.length,
      apiCallsPerTarget: per(backend.aws.calls.length),
      apiCallsByOperation: Object.fromEntries(Object.entries(byOperation).sort().map(([k, v]) => [k, per(v)])),
      throttledCalls: backend.throttled(),
      retries,
      maxHistoryEvents,
      maxHistoryExecution,
      detection: { samples: delays.length, medianSeconds: median(delays), maxSeconds: worst?.delay ?? null, worst: worst?.target ?? null },
      makespanSeconds: makespan / 1000,
      idealSeconds: ideal / 1000,
      makespanRatio: makespan / ideal,
      wallMs: Math.round(performance.now() - started),
    };
  } finally {
    backend.restore();
  }
}
