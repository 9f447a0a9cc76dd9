/** The command line's own help and usage errors, through `cli()` in this process: none of these reach AWS. */
import { describe, expect, it } from 'vitest';
import { cli } from '../../cli/main';
import { COMMANDS, USAGE } from '../../cli/usage';

async function runIn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } };
  const code = await cli(args, io);
  return { code, stdout, stderr };
}

describe('each command explains itself', () => {
  it.each(Object.keys(COMMANDS).filter((c) => c !== 'help'))('%s --help prints its own usage, options and an example', async (name) => {
    const spec = COMMANDS[name];
    for (const args of [[name, '--help'], [name, '-h'], ['help', name]]) {
      const result = await runIn(args);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).not.toBe(USAGE);
      expect(result.stdout).toContain(`ami-pipeline ${spec?.usage ?? ''}`);
      expect(result.stdout).toMatch(/Examples?:\n {2}ami-pipeline /);
      for (const option of spec?.options ?? []) expect(result.stdout).toContain(`--${option}`);
    }
  });

  it('lists every command in the global usage', async () => {
    const result = await runIn(['--help']);
    expect(result.code).toBe(0);
    for (const spec of Object.values(COMMANDS)) expect(result.stdout).toContain(`ami-pipeline ${spec.usage}`);
  });

  it('refuses help for a command that does not exist', async () => {
    const result = await runIn(['help', 'deploy']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`unknown command "deploy" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  });
});

describe('usage errors say what is wrong', () => {
  it.each([
    [['run', '--input', 'examples/input.json', '--local', '--wait-ms', '-5'], '--wait-ms must be a whole number of milliseconds, 0 or more, not "-5"'],
    [['run', '--input', 'examples/input.json', '--local', '--wait-ms=-5'], '--wait-ms must be a whole number of milliseconds, 0 or more, not "-5"'],
    [['status', 'arn:aws:states:eu-west-1:123456789012:execution:AmiPipeline:x', '--poll-ms', '-1'], '--poll-ms must be a whole number of milliseconds, 0 or more, not "-1"'],
    [['validate', '--input', '-input.json'], '--input needs a value, but "-input.json" starts with a dash and reads as an option; write --input=-input.json'],
    [['doctor', '--input', 'examples/input.json', '--endpoint-url', 'notaurl'], '--endpoint-url must be an http:// or https:// URL such as http://127.0.0.1:5000, not "notaurl"'],
    [['run', '--input', 'examples/input.json', '--local', '--endpoint-url', 'localhost:5000'], '--endpoint-url must be an http:// or https:// URL'],
    [['status', 'not-an-arn'], 'status needs an execution ARN such as arn:aws:states:eu-west-1:123456789012:execution:AmiPipeline:NAME, not "not-an-arn": it is not an execution ARN'],
    [['status', 'arn:aws:states:eu-west-1:123456789012:stateMachine:AmiPipeline'], 'that is a state machine ARN; give one of its executions'],
    [['status', 'arn:aws:states:eu-west-1:12345:execution:AmiPipeline:x'], 'it is not an execution ARN'],
  ])('refuses %j before any AWS call (exit 2)', async (args, message) => {
    const result = await runIn(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const [first, hint] = result.stderr.trim().split('\n');
    expect(first).toContain(message);
    expect(hint).toMatch(/^run 'ami-pipeline (\w+ )?--help' for usage$/);
  });

  it('points a command\'s usage error at that command\'s help', async () => {
    const result = await runIn(['doctor', '--input', 'examples/input.json', '--local']);
    expect(result.stderr).toBe("ami-pipeline: --local is not an option of doctor\nrun 'ami-pipeline doctor --help' for usage\n");
  });
});
