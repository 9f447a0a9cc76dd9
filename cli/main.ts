/**
 * `ami-pipeline`: run the pipeline (deployed, or locally against an AWS-compatible endpoint), follow an
 * execution, or validate an input. Exit codes: 0 success, 1 the run failed (or a target did, or the source
 * stayed shared), 2 usage or input errors.
 */
import { parseArgs } from 'node:util';
import type { Io } from './commands';
import { CliError, noCredentialsMessage, usageError } from './errors';
import { COMMANDS, COMMON, commandNames, commandUsage, DEFAULT_STACK, OPTIONS, USAGE, type OptionName } from './usage';

export { USAGE };

// The commands load on demand (the AWS SDK, esbuild and the local runner are heavy): help and usage errors stay quick.
const commands = () => import('./commands');

const MILLISECOND_OPTIONS = new Set(['wait-ms', 'poll-ms']);

function countProblem(name: string, value: string): string {
  return `--${name} must be a whole number of milliseconds, 0 or more, not "${value}"`;
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    const e = error as Error & { code?: string };
    const option = /'(-[^']*?)(?: <value>)?'/.exec(e.message)?.[1]?.split(', ').pop();
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw usageError(`unknown option ${option ?? e.message}`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/ambiguous/.test(e.message) && option) {
        // The next argument starts with a dash: parseArgs reads it as an option, not as this option's value.
        const next = argv[argv.indexOf(option) + 1] ?? '';
        const name = option.replace(/^--?/, '');
        if (MILLISECOND_OPTIONS.has(name)) throw usageError(countProblem(name, next));
        throw usageError(`${option} needs a value, but "${next}" starts with a dash and reads as an option; write ${option}=${next} if it is the value`);
      }
      throw usageError(/argument missing/.test(e.message) ? `${option ?? 'an option'} needs a value` : e.message);
    }
    throw usageError(e.message);
  }
}

function count(name: string, value: string | undefined, command: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usageError(countProblem(name, value), command);
  return Number(value);
}

/** --endpoint-url must be an http(s) URL: the SDK would fail every call with "Invalid URL" otherwise. */
function endpointUrl(value: string | undefined, command: string): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw usageError(`--endpoint-url must be an http:// or https:// URL such as http://127.0.0.1:5000, not "${value}"`, command);
  }
  return value;
}

// arn:PARTITION:states:REGION:ACCOUNT:execution:STATE_MACHINE[/MAP_RUN]:NAME (Step Functions' ARN format; docs/cli.md).
const EXECUTION_ARN_RE = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:\s]{1,160}:[^:\s]{1,80}$/;
const STATE_MACHINE_ARN_RE = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s]{1,80}$/;

function executionArnOf(value: string, command = 'status'): string {
  if (EXECUTION_ARN_RE.test(value)) return value;
  const why = STATE_MACHINE_ARN_RE.test(value)
    ? 'that is a state machine ARN; give one of its executions (run prints it as "started arn:...:execution:...")'
    : 'it is not an execution ARN';
  throw usageError(`${command} needs an execution ARN such as arn:aws:states:eu-west-1:123456789012:execution:AmiPipeline:NAME, not "${value}": ${why}`, command);
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals, tokens } = parse(argv);
  const [command, ...rest] = positionals;
  if (command === 'help' || (values.help && (command === undefined || COMMANDS[command]))) {
    const about = command === 'help' ? rest[0] : command;
    if (about !== undefined && !COMMANDS[about]) throw usageError(`unknown command "${about}" (commands: ${commandNames()})`);
    io.stdout.write(about === undefined ? USAGE : commandUsage(about));
    return 0;
  }
  if (command === undefined) {
    io.stderr.write(USAGE);
    return 2;
  }
  const spec = COMMANDS[command];
  if (!spec) throw usageError(`unknown command "${command}" (commands: ${commandNames()})`);
  const allowed: OptionName[] = [...spec.options, ...COMMON];
  for (const token of tokens) {
    if (token.kind === 'option' && !allowed.includes(token.name as OptionName)) {
      throw usageError(`${token.rawName} is not an option of ${command}`, command);
    }
  }
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usageError(`--output must be table or json, not "${output}"`, command);
  const report = { output, ...(values.manifest ? { manifestPath: values.manifest } : {}) } as const;
  const endpoint = endpointUrl(values['endpoint-url'], command);
  if (values.manifest !== undefined) (await import('./report')).checkManifestPath(values.manifest, command);

  if (command === 'status' || command === 'redrive') {
    const [arg, ...extra] = rest;
    if (!arg) throw usageError(`${command} needs an EXECUTION_ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)`, command);
    if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}"`, command);
    const executionArn = executionArnOf(arg, command);
    const { status, redrive } = await commands();
    return (command === 'status' ? status : redrive)(
      {
        ...report,
        executionArn,
        follow: values.follow ?? false,
        pollMs: count('poll-ms', values['poll-ms'], command) ?? 2000,
        ...(values.region ? { region: values.region } : {}),
        ...(endpoint ? { endpointUrl: endpoint } : {}),
      },
      io,
    );
  }
  if (rest.length > 0) throw usageError(`unexpected argument "${rest[0]}"`, command);
  if (command === 'demo') {
    const { demo } = await import('../local/demo');
    return demo({ ...(endpoint ? { endpointUrl: endpoint } : {}), debug: values.debug ?? false }, io, (args) => main(args, io));
  }
  if (!values.input) throw usageError(`${command} needs --input FILE`, command);
  if (command === 'validate') return (await import('./input')).validate(values.input, io);
  if (command === 'restore') {
    if (!values.account || !values.image || !values.region) throw usageError('restore needs --account ID, --region REGION and --image AMI', command);
    const { restoreCommand } = await import('./restore');
    return restoreCommand(
      {
        input: values.input,
        accountId: values.account,
        region: values.region,
        imageId: values.image,
        output,
        ...(values.parameter ? { parameterName: values.parameter } : {}),
        ...(endpoint ? { endpointUrl: endpoint } : {}),
      },
      io,
    );
  }
  if (command === 'doctor') {
    const { doctorCommand } = await import('./doctor');
    return doctorCommand(
      {
        input: values.input,
        output,
        ...(values.region ? { region: values.region } : {}),
        ...(endpoint ? { endpointUrl: endpoint } : {}),
      },
      io,
    );
  }
  if (command === 'cleanup') {
    const { cleanupCommand } = await import('./cleanup-command');
    return cleanupCommand(
      {
        input: values.input,
        output,
        dryRun: values['dry-run'] ?? false,
        ...(values.region ? { region: values.region } : {}),
        ...(endpoint ? { endpointUrl: endpoint } : {}),
      },
      io,
    );
  }
  if (values['wait-ms'] !== undefined && !values.local) throw usageError('--wait-ms only applies to --local runs', command);
  for (const name of ['state-machine-arn', 'stack', 'poll-ms'] as const) {
    if (values.local && values[name] !== undefined) throw usageError(`--${name} does not apply to --local runs`, command);
  }
  const waitMs = count('wait-ms', values['wait-ms'], command);
  const { run } = await commands();
  return run(
    {
      ...report,
      input: values.input,
      local: values.local ?? false,
      stack: values.stack ?? DEFAULT_STACK,
      pollMs: count('poll-ms', values['poll-ms'], command) ?? 2000,
      ...(waitMs !== undefined ? { waitMs } : {}),
      ...(values.region ? { region: values.region } : {}),
      ...(endpoint ? { endpointUrl: endpoint } : {}),
      ...(values['state-machine-arn'] ? { stateMachineArn: values['state-machine-arn'] } : {}),
      ...(command === 'rekey' ? { mode: 'rekey' as const } : {}),
      ...(values['dry-run'] ? { dryRun: true } : {}),
    },
    io,
  );
}

/** One clear line for what went wrong; the stack only with --debug. */
export function describeError(error: unknown, debug: boolean): { text: string; exitCode: number } {
  if (error instanceof CliError) {
    return { text: `ami-pipeline: ${error.message}${error.hint ? `\n${error.hint}` : ''}`, exitCode: error.exitCode };
  }
  const e = error instanceof Error ? (error as Error & { code?: string }) : new Error(String(error));
  const stack = debug && e.stack ? `\n${e.stack}` : '';
  if (/region is missing/i.test(e.message)) return { text: `ami-pipeline: no AWS region: pass --region or set AWS_REGION${stack}`, exitCode: 2 };
  let message = `${e.name}: ${e.message}`;
  if (e.name === 'CredentialsProviderError') message = noCredentialsMessage(e);
  else if ('code' in e && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test(String(e.code))) message = `cannot reach the AWS endpoint: ${e.message}`;
  return { text: `ami-pipeline: ${message}${stack}`, exitCode: 1 };
}

/** The whole command line: run it, report errors as one line, resolve to the exit code. */
export async function cli(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const debug = argv.includes('--debug');
  // The SDK warns on Node 20 once per bundle loaded; the CLI shows that only with --debug.
  if (!debug) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // A reader that went away (`ami-pipeline run ... | head -3`) must not crash the run half-way, leaving the source
  // shared: the run goes on to its end; only what it prints is lost.
  for (const stream of [io.stdout, io.stderr]) {
    const s = stream as Partial<NodeJS.WriteStream>;
    s.on?.('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    });
  }
  try {
    return await main(argv, io);
  } catch (error) {
    const { text, exitCode } = describeError(error, debug);
    io.stderr.write(`${text}\n`);
    return exitCode;
  }
}
