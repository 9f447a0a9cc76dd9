/**
 * `ami-pipeline`: run the pipeline (deployed, or locally against an AWS-compatible endpoint), follow an
 * execution, or validate an input. Exit codes: 0 success, 1 the run failed (or a target did, or the source
 * stayed shared), 2 usage or input errors.
 */
import { parseArgs } from 'node:util';
import type { Io } from './commands';
import { CliError, usageError } from './errors';

const DEFAULT_STACK = 'encrypted-ami-pipeline-prod';
// The commands load on demand (the AWS SDK, esbuild and the local runner are heavy): help and usage errors stay quick.
const commands = () => import('./commands');

export const USAGE = `ami-pipeline: copy an AMI into every target account and region, encrypted with each account's own KMS key

Usage:
  ami-pipeline run --input FILE [options]     start a run and follow it to its manifest
  ami-pipeline status EXECUTION_ARN [options] show a deployed execution (running or finished)
  ami-pipeline rekey --input FILE [options]   replace each target's key: re-encrypt its published copy (run's options)
  ami-pipeline validate --input FILE          check an input file without touching AWS
  ami-pipeline doctor --input FILE [options]  check the source and every target account × region before a run
  ami-pipeline help                           this text

run options:
  -i, --input FILE            the execution input (JSON; see README "Input")
  --local                     run the state machine and function bundles on this machine
  --endpoint-url URL          AWS-compatible endpoint (moto, LocalStack); --local needs it or AWS_ENDPOINT_URL
  --wait-ms N                 with --local: milliseconds each Wait state lasts (default 0)
  --state-machine-arn ARN     the deployed state machine (default: the StateMachineArn output of --stack)
  --stack NAME                CloudFormation stack of the pipeline (default ${DEFAULT_STACK})
  --region REGION             AWS region (default: the ARN's region, AWS_REGION or your AWS config)
  --poll-ms N                 how often to poll a deployed execution (default 2000)
  --output table|json         the manifest as a table (default) or as JSON on stdout (progress goes to stderr)
  --manifest FILE             also write the manifest JSON to FILE
  --dry-run                   retention only lists what it would retire, and why each kept copy is kept

doctor options:
  --endpoint-url, --region, --output as for run; exit 0 nothing failed, 1 a check failed, 2 bad input

status options:
  --follow                    keep polling until the execution ends
  --output, --region, --endpoint-url, --poll-ms, --manifest as for run

Common:
  --debug                     show stack traces and AWS SDK warnings
  -h, --help                  this text

Exit codes: 0 every target succeeded and the source share was revoked (or: still running, for status
without --follow); 1 the run failed, a target failed or the source is still shared; 2 bad usage or input.
`;

const OPTIONS = {
  input: { type: 'string', short: 'i' },
  local: { type: 'boolean' },
  'endpoint-url': { type: 'string' },
  'state-machine-arn': { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  output: { type: 'string' },
  manifest: { type: 'string' },
  'wait-ms': { type: 'string' },
  'poll-ms': { type: 'string' },
  follow: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const COMMON: OptionName[] = ['debug', 'help'];
const ALLOWED: Record<string, OptionName[]> = {
  run: ['input', 'local', 'endpoint-url', 'state-machine-arn', 'stack', 'region', 'output', 'manifest', 'wait-ms', 'poll-ms', 'dry-run'],
  rekey: ['input', 'local', 'endpoint-url', 'state-machine-arn', 'stack', 'region', 'output', 'manifest', 'wait-ms', 'poll-ms', 'dry-run'],
  status: ['output', 'follow', 'region', 'endpoint-url', 'poll-ms', 'manifest'],
  validate: ['input'],
  doctor: ['input', 'endpoint-url', 'region', 'output'],
  help: [],
};

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    const e = error as Error & { code?: string };
    const option = /'(-[^']*?)(?: <value>)?'/.exec(e.message)?.[1]?.split(', ').pop();
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw usageError(`unknown option ${option ?? e.message}`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw usageError(/argument missing|ambiguous/.test(e.message) ? `${option ?? 'an option'} needs a value` : e.message);
    }
    throw usageError(e.message);
  }
}

function count(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usageError(`--${name} must be a whole number of milliseconds, not "${value}"`);
  return Number(value);
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { values, positionals, tokens } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (command === undefined) {
    io.stderr.write(USAGE);
    return 2;
  }
  const allowed = ALLOWED[command];
  if (!allowed) throw usageError(`unknown command "${command}" (commands: run, rekey, status, validate, doctor, help)`);
  for (const token of tokens) {
    if (token.kind === 'option' && ![...allowed, ...COMMON].includes(token.name as OptionName)) {
      throw usageError(`${token.rawName} is not an option of ${command}`);
    }
  }
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usageError(`--output must be table or json, not "${output}"`);
  const report = { output, ...(values.manifest ? { manifestPath: values.manifest } : {}) } as const;

  if (command === 'status') {
    const [executionArn, ...extra] = rest;
    if (!executionArn) throw usageError('status needs an EXECUTION_ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)');
    if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}"`);
    const { status } = await commands();
    return status(
      {
        ...report,
        executionArn,
        follow: values.follow ?? false,
        pollMs: count('poll-ms', values['poll-ms']) ?? 2000,
        ...(values.region ? { region: values.region } : {}),
        ...(values['endpoint-url'] ? { endpointUrl: values['endpoint-url'] } : {}),
      },
      io,
    );
  }
  if (rest.length > 0) throw usageError(`unexpected argument "${rest[0]}"`);
  if (!values.input) throw usageError(`${command} needs --input FILE`);
  if (command === 'validate') return (await import('./input')).validate(values.input, io);
  if (command === 'doctor') {
    const { doctorCommand } = await import('./doctor');
    return doctorCommand(
      {
        input: values.input,
        output,
        ...(values.region ? { region: values.region } : {}),
        ...(values['endpoint-url'] ? { endpointUrl: values['endpoint-url'] } : {}),
      },
      io,
    );
  }
  if (values['wait-ms'] !== undefined && !values.local) throw usageError('--wait-ms only applies to --local runs');
  for (const name of ['state-machine-arn', 'stack', 'poll-ms'] as const) {
    if (values.local && values[name] !== undefined) throw usageError(`--${name} does not apply to --local runs`);
  }
  const waitMs = count('wait-ms', values['wait-ms']);
  const { run } = await commands();
  return run(
    {
      ...report,
      input: values.input,
      local: values.local ?? false,
      stack: values.stack ?? DEFAULT_STACK,
      pollMs: count('poll-ms', values['poll-ms']) ?? 2000,
      ...(waitMs !== undefined ? { waitMs } : {}),
      ...(values.region ? { region: values.region } : {}),
      ...(values['endpoint-url'] ? { endpointUrl: values['endpoint-url'] } : {}),
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
  if (e.name === 'CredentialsProviderError') message = `no AWS credentials: ${e.message} (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)`;
  else if ('code' in e && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test(String(e.code))) message = `cannot reach the AWS endpoint: ${e.message}`;
  return { text: `ami-pipeline: ${message}${stack}`, exitCode: 1 };
}

/** The whole command line: run it, report errors as one line, resolve to the exit code. */
export async function cli(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const debug = argv.includes('--debug');
  // The SDK warns on Node 20 once per bundle loaded; the CLI shows that only with --debug.
  if (!debug) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  try {
    return await main(argv, io);
  } catch (error) {
    const { text, exitCode } = describeError(error, debug);
    io.stderr.write(`${text}\n`);
    return exitCode;
  }
}
