/** The command line's own help and usage errors, through `cli()` in this process: none of these reach AWS. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../../cli/main';
import { COMMANDS, COMMON, OPTIONS, USAGE, type OptionName } from '../../cli/usage';
import { CLI_DOC, withCliReference } from '../../scripts/cli-reference';
import { commandLines, docPages } from '../support/docs';

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

/** Words of a command line shown in prose that stand for more of it. */
const ELLIPSIS = /^(\[options\]|\[run's options\]|…|\.\.\.)$/;
const SHORT = new Map<string, string>(Object.entries(OPTIONS).flatMap(([name, o]): [string, string][] => ('short' in o ? [[o.short, name]] : [])));

/** How many arguments a command's usage line shows: `status EXECUTION_ARN [options]` one, `help [COMMAND]` one. */
function argumentsOf(usage: string): number {
  const words = usage.split(' ').slice(1);
  return words.filter((w, i) => /^\[?[A-Z_]+\]?$/.test(w) && !/^\[?-/.test(words[i - 1] ?? '')).length;
}

/** What is wrong with `ami-pipeline WORDS…`, judged by the CLI's own table: the command, its arguments and each flag. */
function problems(words: string[]): string[] {
  const [first = '', ...rest] = words;
  const spec = COMMANDS[first];
  // `ami-pipeline COMMAND --help`, `npm run cli -- …`: any command, with the options every command takes.
  const anyCommand = first === 'COMMAND' || ELLIPSIS.test(first);
  if (!spec && !anyCommand && !first.startsWith('-')) return [`"${first}" is not a command (commands: ${Object.keys(COMMANDS).join(', ')})`];
  const args = spec || anyCommand ? rest : words;
  const allowed = spec ? [...spec.options, ...COMMON] : COMMON;
  const maxArguments = spec ? argumentsOf(spec.usage) : anyCommand ? Infinity : 0;
  const found: string[] = [];
  let given = 0;
  for (let i = 0; i < args.length; i += 1) {
    const raw = args[i] ?? '';
    if (ELLIPSIS.test(raw)) continue;
    const word = raw.replace(/^[[(]+/, '').replace(/[\])]+,?$|,$/, '');
    if (!word.startsWith('-')) {
      given += 1;
      continue;
    }
    const [flag = '', value] = word.split('=');
    const name = flag.startsWith('--') ? flag.slice(2) : SHORT.get(flag.slice(1));
    if (!name || !(name in OPTIONS)) found.push(`${flag} is no option of the CLI`);
    else if (!allowed.includes(name as OptionName)) found.push(`${flag} is not an option of ${spec ? first : 'every command'}`);
    else if (OPTIONS[name as OptionName].type === 'string' && value === undefined) i += 1;
  }
  if (given > maxArguments) found.push(`${first} takes ${maxArguments} argument(s), not ${given}`);
  return found;
}

describe('the command lines shown in README.md and docs/', () => {
  const pages = docPages();

  it.each(pages.map((p) => [p.path, p] as const))('%s shows only commands and flags the CLI accepts', (_, page) => {
    const wrong = commandLines(page).flatMap((line) => problems(line.words).map((p) => `${line.at}: ami-pipeline ${line.words.join(' ')}: ${p}`));
    expect(wrong).toEqual([]);
  });

  it("finds the README walkthrough's commands, and judges them as the parser does", () => {
    const readme = pages.find((p) => p.path === 'README.md');
    const shown = new Set(commandLines(readme ?? { path: '', text: '' }).map((l) => l.words[0]));
    for (const command of ['demo', 'validate', 'doctor', 'run', 'status', 'redrive', 'cleanup']) expect(shown).toContain(command);
    expect(problems(['run', '--input', 'in.json', '--follow'])).toEqual(['--follow is not an option of run']);
    expect(problems(['deploy', '--input', 'in.json'])[0]).toMatch(/^"deploy" is not a command/);
    expect(problems(['cleanup', 'in.json'])).toEqual(['cleanup takes 0 argument(s), not 1']);
    expect(problems(['status', 'EXECUTION_ARN', '[--follow]', '[--output', 'table|json]'])).toEqual([]);
    expect(problems(['status', 'ARN', 'ARN'])).toEqual(['status takes 1 argument(s), not 2']);
    expect(problems(['COMMAND', '--help'])).toEqual([]);
    expect(problems(['validate', '-i', 'in.json', '--input=x', '--nope'])).toEqual(['--nope is no option of the CLI']);
  });

  it("each command's examples are command lines it accepts", () => {
    const wrong = Object.values(COMMANDS).flatMap((spec) =>
      spec.examples.flatMap((e) => problems(e.replace(/^ami-pipeline /, '').split(' ')).map((p) => `${e}: ${p}`)));
    expect(wrong).toEqual([]);
  });

  it("docs/cli.md's command reference is the CLI's own table (run npm run docs after changing cli/usage.ts)", () => {
    const page = readFileSync(CLI_DOC, 'utf8');
    expect(page).toBe(withCliReference(page));
  });
});
