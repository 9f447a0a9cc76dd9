/**
 * What must agree across files, checked against each other instead of by hand: serverless.yml's functions and
 * timeouts, every definition in statemachine/, the poll budgets in functions/shared/budget.ts, the CLI's progress
 * phases, and each handler's header naming the states that call it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PHASE_OF_STATE, STAGE_OF_STATE } from '../../cli/progress';
import { COPY_WAIT, LAUNCH_WAIT, MAX_COPY_POLLS, MAX_LAUNCH_POLLS } from '../../functions/shared/budget';
import { allStates, resolveFiles, type Definition } from '../../local/asl';

type State = Record<string, unknown>;
interface ServerlessFunction {
  handler: string;
  timeout: number;
}

const root = new URL('../../', import.meta.url);
const serverless = parse(readFileSync(new URL('serverless.yml', root), 'utf8')) as {
  functions: Record<string, ServerlessFunction>;
  stepFunctions: { stateMachines: Record<string, { definition: string }> };
};
/** Each state machine serverless.yml deploys, its `${file()}` includes resolved as the deploy resolves them. */
const machines = Object.entries(serverless.stepFunctions.stateMachines).map(([file, { definition }]) => ({
  file,
  definition: resolveFiles(definition) as Definition,
}));
const states = machines.flatMap(({ file, definition }) => allStates(definition).map(([name, state]) => ({ file, name, state })));

/** The states written in one file (an ItemProcessor included from another file is that file's). */
function allStatesOfFile(definition: Definition): [string, State][] {
  const out: [string, State][] = [];
  const walk = (states: Record<string, State> | undefined): void => {
    for (const [name, state] of Object.entries(states ?? {})) {
      out.push([name, state]);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States?: Record<string, State> } | string | undefined;
      if (typeof processor === 'object') walk(processor.States);
      for (const branch of (state.Branches as { States: Record<string, State> }[] | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, State>);
  return out;
}

/** The serverless function a Task invokes (Resource: Fn::GetAtt [key, Arn]); undefined for other tasks. */
function functionOf(state: State): string | undefined {
  const resource = state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined;
  return state.Type === 'Task' && typeof resource === 'object' ? resource['Fn::GetAtt']?.[0] : undefined;
}
const lambdaTasks = states.flatMap((s) => {
  const fn = functionOf(s.state);
  return fn ? [{ ...s, fn }] : [];
});

function numericBound(variable: string): number[] {
  const bounds: number[] = [];
  const visit = (rule: unknown): void => {
    if (typeof rule !== 'object' || rule === null) return;
    const r = rule as Record<string, unknown>;
    // The loop goes round again only while the attempt is below the ceiling.
    if (r.Variable === variable && typeof r.NumericLessThan === 'number') bounds.push(r.NumericLessThan);
    for (const inner of [...((r.And as unknown[]) ?? []), ...((r.Or as unknown[]) ?? []), r.Not]) visit(inner);
  };
  for (const { state } of states) for (const rule of (state.Choices as unknown[] | undefined) ?? []) visit(rule);
  return bounds;
}

describe('serverless.yml, the definitions and the code agree', () => {
  it('has every state machine task invoke a function serverless.yml deploys', () => {
    expect(lambdaTasks.length).toBeGreaterThan(0);
    for (const { file, name, fn } of lambdaTasks) expect(serverless.functions[fn], `${file} ${name} invokes ${fn}`).toBeDefined();
  });

  it('gives every Lambda task more time than its function, so Step Functions never abandons an invocation still running', () => {
    // copyEncrypt's 660 s are for its status action (GetImageState); copy and find make a few calls and return.
    const shortActions = new Set(['copyEncrypt copy', 'copyEncrypt find']);
    const tooShort = lambdaTasks
      .filter(({ state, fn }) => !shortActions.has(`${fn} ${String((state.Parameters as { action?: unknown } | undefined)?.action)}`))
      .filter(({ state, fn }) => !((state.TimeoutSeconds as number) > (serverless.functions[fn]?.timeout ?? Infinity)))
      .map(({ file, name, state, fn }) => `${file} ${name}: ${String(state.TimeoutSeconds)} s, ${fn} ${serverless.functions[fn]?.timeout ?? '?'} s`);
    expect(tooShort).toEqual([]);
    const status = lambdaTasks.find((t) => t.name === 'GetImageState');
    expect(status?.state.TimeoutSeconds).toBeGreaterThan(serverless.functions.copyEncrypt?.timeout ?? Infinity);
  });

  it('gives the copy status check and the launch check more time than they keep looking in one invocation', () => {
    // GetImageState keeps looking at a nearly done copy for up to COPY_WAIT.approachMax (600 s) before it returns.
    expect(serverless.functions.copyEncrypt?.timeout).toBeGreaterThanOrEqual(COPY_WAIT.approachMax + 60);
    // GetLaunchState keeps looking at a starting instance for up to LAUNCH_WAIT.approach.
    expect(serverless.functions.verifyLaunch?.timeout).toBeGreaterThanOrEqual(LAUNCH_WAIT.approach + 30);
  });

  it('bounds the two poll loops in the definition at the ceilings budget.ts plans for', () => {
    expect(numericBound('$.copy.attempt')).toEqual([MAX_COPY_POLLS]);
    expect(numericBound('$.launch.attempt')).toEqual([MAX_LAUNCH_POLLS]);
  });

  it('gives every state the CLI can see a progress phase or a run stage', () => {
    const shown = new Set([...Object.keys(PHASE_OF_STATE), ...Object.keys(STAGE_OF_STATE)]);
    // The janitor runs outside any CLI view.
    const pipeline = states.filter((s) => s.file !== 'janitor');
    const missing = pipeline.filter((s) => !shown.has(s.name)).map((s) => `${s.file} ${s.name}`);
    expect(missing).toEqual([]);
    const known = new Set(states.map((s) => s.name));
    expect([...shown].filter((name) => !known.has(name))).toEqual([]);
  });

  it("names every state that invokes a handler in the first line of that handler's header, with its serverless function", () => {
    for (const [fn, { handler }] of Object.entries(serverless.functions)) {
      const file = `${handler.replace(/\.handler$/, '')}.ts`;
      const first = readFileSync(new URL(file, root), 'utf8').split('\n')[1] ?? '';
      expect(first, file).toContain(`Serverless function: ${fn}.`);
      for (const { name } of lambdaTasks.filter((t) => t.fn === fn)) expect(first, `${file} names ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
      const named = /States: ([^.]*)\./.exec(first)?.[1]?.split(', ').filter((n) => n !== 'none (EventBridge rules invoke it)') ?? [];
      for (const name of named) expect(lambdaTasks.some((t) => t.name === name && t.fn === fn), `${file} names ${name}, which does not invoke ${fn}`).toBe(true);
    }
  });

  it('says at the top of each definition file which file runs each of its Task states', () => {
    for (const file of readdirSync(new URL('statemachine/', root)).filter((f) => f.endsWith('.asl.yml'))) {
      const text = readFileSync(new URL(`statemachine/${file}`, root), 'utf8');
      const header = text.split('\n').filter((l) => l.startsWith('#')).join('\n');
      const own = parse(text) as Definition;
      for (const [name, state] of allStatesOfFile(own)) {
        const fn = functionOf(state);
        if (!fn) continue;
        const handler = `${serverless.functions[fn]?.handler.replace(/\.handler$/, '') ?? '?'}.ts`;
        expect(header, `statemachine/${file}: ${name}`).toMatch(new RegExp(`\\b${name}\\b[^\\n]*${handler.replace(/[./]/g, '\\$&')}`));
      }
    }
  });
});
