/**
 * The local runner holds AWS's limits (local/limits.ts, docs/limits.md): small definitions that pass each limit
 * by one byte, character or event, run through the same runner as the pipeline, and fail as AWS fails.
 */
import { describe, expect, it } from 'vitest';
import { asLambda, runDefinition, type Definition, type Json, type LoadedDefinition, type TaskHandler } from '../../local/asl';
import { CAUSE_MAX_CHARS, ERROR_MAX_CHARS, HISTORY_EVENTS_MAX, LAMBDA_SYNC_PAYLOAD_BYTES, PAYLOAD_LIMIT_BYTES, executionNameProblem, payloadBytes } from '../../local/limits';

const ARN = 'arn:aws:lambda:us-east-1:123456789012:function:limits-test';

/** A definition whose Task states all invoke the `work` handler. */
function loaded(States: Definition['States'], StartAt = Object.keys(States)[0]!): LoadedDefinition {
  const taskFunctions: Record<string, string> = {};
  const walk = (states: Definition['States']) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') taskFunctions[name] = 'work';
      const inner = (state.ItemProcessor as { States: Definition['States'] } | undefined)?.States;
      if (inner) walk(inner);
    }
  };
  walk(States);
  return { definition: { StartAt, States }, taskFunctions, childTasks: {}, distributedMaps: {} };
}

/** A string whose JSON text (with its quotes) is `bytes` bytes. */
const blob = (bytes: number) => 'x'.repeat(bytes - 2);
/** An object `{ data }` whose JSON text is exactly `bytes` bytes. */
const sized = (bytes: number) => ({ data: blob(bytes - '{"data":}'.length) });

const task = (extra: Record<string, unknown> = {}) => ({ Type: 'Task', Resource: ARN, TimeoutSeconds: 10, ...extra });
const catcher = (errors: string[]) => ({ Catch: [{ ErrorEquals: errors, Next: 'Caught' }] });
const caught = { Caught: { Type: 'Pass', End: true } };

async function run(definition: LoadedDefinition, work: TaskHandler, input: Json = {}, executionName = 'limits') {
  return runDefinition(input, { work }, { definition, executionName });
}

describe('payloads over 262,144 bytes', () => {
  it('lets a result of exactly 262,144 bytes through', async () => {
    expect(payloadBytes(sized(PAYLOAD_LIMIT_BYTES))).toBe(PAYLOAD_LIMIT_BYTES);
    const r = await run(loaded({ Work: task({ End: true }) }), async () => sized(PAYLOAD_LIMIT_BYTES));
    expect(r.error).toBeUndefined();
  });

  it('fails the execution with States.DataLimitExceeded when a Task returns one byte more', async () => {
    const r = await run(loaded({ Work: task({ End: true }) }), async () => sized(PAYLOAD_LIMIT_BYTES + 1));
    expect(r.error?.name).toBe('States.DataLimitExceeded');
    expect(r.error?.cause).toContain(`'${ARN}' returned a result with a size exceeding`);
    expect(r.error?.cause).toContain('262,145 bytes, limit 262,144');
  });

  // AWS reports an oversized Lambda result as the task's failure: a Catch on its name, or on States.ALL, takes it.
  it.each([['States.DataLimitExceeded'], ['States.ALL']])('lets a Catch on %s take an oversized task result, as AWS does', async (error) => {
    const r = await run(loaded({ Work: task({ End: true, ...catcher([error]) }), ...caught }), async () => sized(PAYLOAD_LIMIT_BYTES + 1));
    expect(r.error).toBeUndefined();
    expect((r.output as { Error: string }).Error).toBe('States.DataLimitExceeded');
  });

  it('fails the execution when a state output is over the limit, and neither States.ALL nor the error name catches it', async () => {
    // The result is small; ResultPath puts it beside an input that is already near the limit.
    for (const errors of [['States.ALL'], ['States.DataLimitExceeded']]) {
      const definition = loaded({ Work: task({ ResultPath: '$.result', End: true, ...catcher(errors) }), ...caught });
      const r = await run(definition, async () => blob(1000), sized(PAYLOAD_LIMIT_BYTES - 500));
      expect(r.error?.name).toBe('States.DataLimitExceeded');
      expect(r.error?.cause).toMatch(/'Work' returned a result .* \(state output: 26\d,\d{3} bytes, limit 262,144\)/);
      expect(r.executions[0]!.events.some((e) => e.type === 'StateExited' && e.state?.name === 'Work')).toBe(false);
    }
  });

  it('fails the execution when a Pass state builds an output over the limit', async () => {
    const r = await run(loaded({ Big: { Type: 'Pass', Result: sized(PAYLOAD_LIMIT_BYTES + 1), End: true } }), async () => null);
    expect(r.error?.name).toBe('States.DataLimitExceeded');
    expect(r.error?.cause).toContain("'Big'");
  });

  it('fails the execution when a Map state gathers its iterations into an output over the limit, whatever it catches', async () => {
    const States = {
      Fan: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: { StartAt: 'Work', States: { Work: task({ End: true }) } },
        End: true,
        ...catcher(['States.ALL']),
      },
      ...caught,
    };
    const items = Array.from({ length: 3 }, (_, i) => i);
    const r = await run(loaded(States), async () => blob(100_000), { items });
    expect(r.error?.name).toBe('States.DataLimitExceeded');
    expect(r.error?.cause).toContain("'Fan'");
  });

  it('fails the execution when a Map iteration input is over the limit, even with a Catch on States.ALL', async () => {
    const States = {
      Fan: {
        Type: 'Map',
        ItemsPath: '$.items',
        // Each iteration's input holds the pad twice: the Map's own input fits, its iteration's does not.
        ItemSelector: { 'item.$': '$$.Map.Item.Value', 'pad.$': '$.pad', 'again.$': '$.pad' },
        ItemProcessor: { StartAt: 'Work', States: { Work: task({ End: true }) } },
        ResultPath: null,
        End: true,
        ...catcher(['States.ALL']),
      },
      ...caught,
    };
    const r = await run(loaded(States), async () => 'ok', { items: [1], pad: blob(140_000) });
    expect(r.error?.name).toBe('States.DataLimitExceeded');
    expect(r.error?.cause).toContain('state input');
  });

  it("fails the execution when a Task's input after Parameters is over the limit, before the function runs", async () => {
    let invoked = false;
    const definition = loaded({ Work: task({ Parameters: { 'a.$': '$.half', 'b.$': '$.half' }, End: true, ...catcher(['States.ALL']) }), ...caught });
    const r = await run(
      definition,
      async () => {
        invoked = true;
        return null;
      },
      { half: blob(PAYLOAD_LIMIT_BYTES / 2) },
    );
    expect(invoked).toBe(false);
    expect(r.error?.name).toBe('States.DataLimitExceeded');
    expect(r.error?.cause).toContain('task input after Parameters');
  });

  it('refuses to start an execution whose input is over the limit', async () => {
    await expect(run(loaded({ Work: task({ End: true }) }), async () => null, sized(PAYLOAD_LIMIT_BYTES + 1))).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('262,145 bytes') as string,
    });
  });
});

describe('Lambda synchronous payloads over 6 MB', () => {
  it('refuses a request over 6 MB with Lambda.RequestTooLargeException', async () => {
    const invoke = asLambda(async () => null);
    await expect(invoke(blob(LAMBDA_SYNC_PAYLOAD_BYTES + 1))).rejects.toMatchObject({ name: 'Lambda.RequestTooLargeException' });
    await expect(invoke(blob(LAMBDA_SYNC_PAYLOAD_BYTES))).resolves.toBeNull();
  });

  it('fails a response over 6 MB with Function.ResponseSizeTooLarge, which a Catch on that name takes', async () => {
    const definition = loaded({ Work: task({ End: true, ...catcher(['Function.ResponseSizeTooLarge']) }), ...caught });
    const r = await run(definition, async () => blob(LAMBDA_SYNC_PAYLOAD_BYTES + 1));
    expect(r.error).toBeUndefined();
    expect(r.executions[0]!.events.some((e) => e.type === 'StateCaught')).toBe(true);
  });
});

describe('errors and causes', () => {
  it('keeps the first 32,768 characters of a task failure cause and 256 of its error', async () => {
    const r = await run(loaded({ Work: task({ End: true }) }), async () => {
      throw Object.assign(new Error('y'.repeat(40_000)), { name: `E${'r'.repeat(299)}Error` });
    });
    expect(r.error?.cause).toHaveLength(CAUSE_MAX_CHARS);
    expect(r.error?.name).toHaveLength(ERROR_MAX_CHARS);
    expect(r.error?.cause.startsWith('{"errorType":"Err')).toBe(true);
  });

  it('keeps the first 32,768 characters of a Fail state cause', async () => {
    const States = { Stop: { Type: 'Fail', Error: 'RunFailedError', CausePath: '$.cause' } };
    const r = await run(loaded(States), async () => null, { cause: 'z'.repeat(CAUSE_MAX_CHARS + 1) });
    expect(r.error).toEqual({ name: 'RunFailedError', cause: 'z'.repeat(CAUSE_MAX_CHARS) });
  });
});

describe('execution names', () => {
  it.each([
    ['a'.repeat(80), undefined],
    ['a'.repeat(81), 'ValidationException'],
    ['', 'ValidationException'],
    ['run 1', 'InvalidName'],
    ['run:1', 'InvalidName'],
    ['run/1', 'InvalidName'],
    ['run\u0007', 'InvalidName'],
    ['ami-pipeline-2026-11-30T12-00-00-000Z', undefined],
  ])('judges %j as StartExecution does', (name, code) => {
    expect(executionNameProblem(name)?.code).toBe(code);
  });

  it('refuses to start an execution named with 81 characters', async () => {
    await expect(run(loaded({ Work: task({ End: true }) }), async () => null, {}, 'n'.repeat(81))).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('25,000 history events', () => {
  // Init (2) + per loop Inc (2) and IsDone (2) + Done (2) + the execution's own 2: 6 + 4 x loops events.
  const States = {
    Init: { Type: 'Pass', Parameters: { n: 0, 'limit.$': '$.limit' }, Next: 'Inc' },
    Inc: { Type: 'Pass', Parameters: { 'n.$': 'States.MathAdd($.n, 1)', 'limit.$': '$.limit' }, Next: 'IsDone' },
    IsDone: { Type: 'Choice', Choices: [{ Variable: '$.n', NumericGreaterThanEqualsPath: '$.limit', Next: 'Done' }], Default: 'Inc' },
    Done: { Type: 'Succeed' },
  };
  const loops = Math.floor((HISTORY_EVENTS_MAX - 6) / 4);

  it('runs an execution of 24,998 events to its end', async () => {
    const r = await run(loaded(States), async () => null, { limit: loops });
    expect(r.error).toBeUndefined();
  });

  it('fails the execution that would write its 25,001st event', async () => {
    const r = await run(loaded(States), async () => null, { limit: loops + 1 });
    expect(r.error?.name).toBe('States.Runtime');
    expect(r.error?.cause).toContain('maximum number of history events (25,000)');
  });
});
