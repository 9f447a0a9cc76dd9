/**
 * What the CLI accepts and how it explains itself: every option once (its parseArgs shape and one line of help),
 * and one entry per command (its options, usage, and an example). `ami-pipeline help` lists the commands;
 * `ami-pipeline COMMAND --help` (or `help COMMAND`) prints that command's entry. A new command adds an entry here.
 */

export const DEFAULT_STACK = 'encrypted-ami-pipeline-prod';

export const OPTIONS = {
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
  account: { type: 'string' },
  image: { type: 'string' },
  parameter: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type OptionName = keyof typeof OPTIONS;

/** One line per option: how it is written and what it does. */
const OPTION_HELP: Record<OptionName, [string, string]> = {
  input: ['-i, --input FILE', 'the pipeline input (JSON; README.md "Input", examples/input.json)'],
  local: ['--local', 'run the state machine and function bundles on this machine'],
  'endpoint-url': ['--endpoint-url URL', 'an AWS-compatible endpoint (moto, LocalStack) instead of AWS (default: AWS_ENDPOINT_URL)'],
  'wait-ms': ['--wait-ms N', 'with --local: milliseconds each Wait state lasts (default 0)'],
  'state-machine-arn': ['--state-machine-arn ARN', 'the deployed state machine (default: the StateMachineArn output of --stack)'],
  stack: ['--stack NAME', `CloudFormation stack of the pipeline (default ${DEFAULT_STACK})`],
  region: ['--region REGION', 'AWS region (default: the ARN\'s region, AWS_REGION or your AWS config)'],
  'poll-ms': ['--poll-ms N', 'how often to poll a deployed execution (default 2000)'],
  output: ['--output table|json', 'a table (default) or JSON on stdout (progress goes to stderr)'],
  manifest: ['--manifest FILE', 'also write the manifest JSON to FILE (its folder must exist)'],
  'dry-run': ['--dry-run', 'retention only lists what it would retire, and why each kept copy is kept'],
  follow: ['--follow', 'keep polling until the execution ends'],
  account: ['--account ID', 'the target account of the copy'],
  image: ['--image AMI', 'the disabled copy to bring back'],
  parameter: ['--parameter NAME', 'the SSM parameter to point at it (default: the input\'s publish.parameterName)'],
  debug: ['--debug', 'show stack traces and AWS SDK warnings'],
  help: ['-h, --help', 'this text'],
};

/** Options every command takes. */
export const COMMON: OptionName[] = ['debug', 'help'];

export interface CommandSpec {
  /** The usage line after `ami-pipeline `. */
  usage: string;
  /** One line: what the command does. */
  summary: string;
  options: OptionName[];
  /** What an option means for this command, where that differs from its line in OPTION_HELP. */
  optionHelp?: Partial<Record<OptionName, string>>;
  /** Further lines shown by the command's --help (exit codes, notes). */
  notes?: string[];
  examples: string[];
}

const RUN_OPTIONS: OptionName[] = ['input', 'local', 'endpoint-url', 'wait-ms', 'state-machine-arn', 'stack', 'region', 'poll-ms', 'output', 'manifest', 'dry-run'];
const PIPELINE_REGION = "the pipeline's region (default: AWS_REGION, else the source's region)";
const RUN_EXIT = 'Exit codes: 0 every target succeeded and the source share was revoked; 1 the run failed, a target failed or the source is still shared; 2 bad usage or input.';

export const COMMANDS: Record<string, CommandSpec> = {
  run: {
    usage: 'run --input FILE [options]',
    summary: 'start a run and follow it to its manifest',
    options: RUN_OPTIONS,
    notes: [RUN_EXIT],
    examples: [
      'ami-pipeline run --input examples/input.json --manifest manifest.json',
      'ami-pipeline run --input examples/input.json --local --endpoint-url http://127.0.0.1:5000',
    ],
  },
  status: {
    usage: 'status EXECUTION_ARN [options]',
    summary: 'show a deployed execution (running or finished) and the manifest it wrote to S3',
    options: ['follow', 'output', 'region', 'endpoint-url', 'poll-ms', 'manifest'],
    notes: [
      'EXECUTION_ARN: arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME, as `run` prints it.',
      'Exit codes: as for run; a running execution without --follow exits 0.',
    ],
    examples: ['ami-pipeline status arn:aws:states:eu-west-1:123456789012:execution:AmiPipeline:nightly-2026-01-31 --follow'],
  },
  redrive: {
    usage: 'redrive EXECUTION_ARN [options]',
    summary: 'redrive a failed, stopped or timed-out run (RedriveExecution) and follow it',
    options: ['output', 'region', 'endpoint-url', 'poll-ms', 'manifest'],
    notes: [
      'Step Functions goes on from the step that did not succeed, with the same input; what succeeded is not run again.',
      'A run whose targets failed retries only those targets, in a new Map Run (docs/fanout.md, Redrive).',
      'Within 14 days of the stop; a succeeded or running execution is refused: start a new run.',
      'EXECUTION_ARN: as for status. Exit codes: as for run.',
    ],
    examples: ['ami-pipeline redrive arn:aws:states:eu-west-1:123456789012:execution:AmiPipeline:nightly-2026-01-31'],
  },
  rekey: {
    usage: 'rekey --input FILE [options]',
    summary: "replace each target's key: re-encrypt its published copy (run's options)",
    options: RUN_OPTIONS,
    notes: [
      "The input names publish.parameterName and each target's new kmsKey, and no source.",
      'Exit codes: 0 every target was re-encrypted with its new key; 1 the run failed or a target failed; 2 bad usage or input.',
    ],
    examples: ['ami-pipeline rekey --input rekey.json --manifest rekey-manifest.json'],
  },
  validate: {
    usage: 'validate --input FILE',
    summary: 'check an input file without touching AWS',
    options: ['input'],
    notes: ['Exit codes: 0 valid; 2 the file cannot be read or the input is invalid (every problem is listed).'],
    examples: ['ami-pipeline validate --input examples/input.json'],
  },
  doctor: {
    usage: 'doctor --input FILE [options]',
    summary: 'check the source and every target account × region before a run',
    options: ['input', 'endpoint-url', 'region', 'output'],
    optionHelp: { region: PIPELINE_REGION },
    notes: ['Exit codes: 0 nothing failed (warnings allowed); 1 a check failed; 2 bad usage or input.'],
    examples: ['ami-pipeline doctor --input examples/input.json', 'ami-pipeline doctor --input examples/input.json --output json'],
  },
  cleanup: {
    usage: 'cleanup --input FILE [options]',
    summary: 'remove what stopped or interrupted runs of this input left: stale shares, launch checks, failed copies',
    options: ['input', 'endpoint-url', 'region', 'output', 'dry-run'],
    optionHelp: { 'dry-run': 'list what would be removed and remove nothing', region: PIPELINE_REGION },
    notes: [
      'A share or launch check of a run that is still running stays.',
      'Exit codes: 0 nothing stale remains; 1 something stale remains (or could not be looked at); 2 bad usage or input.',
    ],
    examples: ['ami-pipeline cleanup --input examples/input.json --dry-run', 'ami-pipeline cleanup --input examples/input.json --endpoint-url http://127.0.0.1:5000'],
  },
  restore: {
    usage: 'restore --input FILE --account ID --region REGION --image AMI [options]',
    summary: 'bring back a copy retention disabled and point the parameter at it again',
    options: ['input', 'account', 'region', 'image', 'parameter', 'endpoint-url', 'output'],
    optionHelp: { region: 'the target region of the copy' },
    notes: [
      'Works in the grace period (retention.graceDays): EnableImage, the retire-after tag removed, the parameter re-pointed, protection moved to it.',
      'Exit codes: 0 restored; 1 AWS refused (the error says why); 2 bad usage or input.',
    ],
    examples: ['ami-pipeline restore --input examples/input.json --account 111111111111 --region eu-west-1 --image ami-0123456789abcdef0'],
  },
  demo: {
    usage: 'demo [--endpoint-url URL]',
    summary: 'the whole pipeline on this machine, against moto: 3 target accounts × 2 regions (npm run demo)',
    options: ['endpoint-url'],
    notes: [
      "Starts moto (python3 -m moto.server) unless --endpoint-url or AWS_ENDPOINT_URL names an endpoint, seeds the builder account's base image and templates/target-account.yml in each target, runs `run --local` with the live view, prints where each encrypted image is, and stops moto.",
      'Exit codes: as for run.',
    ],
    examples: ['ami-pipeline demo', 'ami-pipeline demo --endpoint-url http://localhost:4566'],
  },
  help: {
    usage: 'help [COMMAND]',
    summary: 'this text, or the usage of one command',
    options: [],
    examples: ['ami-pipeline help run'],
  },
};

export const USAGE = `ami-pipeline: copy an AMI into every target account and region, encrypted with each account's own KMS key

Usage:
${table(Object.values(COMMANDS).map((c) => [`ami-pipeline ${c.usage}`, c.summary]))}
Common options:
${table(COMMON.map((o) => OPTION_HELP[o]))}
Run 'ami-pipeline COMMAND --help' for a command's options and an example.

Exit codes: 0 success; 1 the run failed, a target failed or the source is still shared; 2 bad usage or input.
`;

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}\n`).join('');
}

/** A command's options, its own and the common ones: how each is written and what it means for this command. */
export function optionRows(spec: CommandSpec): [string, string][] {
  return [...spec.options, ...COMMON].map((o) => [OPTION_HELP[o][0], spec.optionHelp?.[o] ?? OPTION_HELP[o][1]]);
}

/** `ami-pipeline COMMAND --help`: its usage, options, notes and examples. */
export function commandUsage(name: string): string {
  const spec = COMMANDS[name];
  if (!spec) return USAGE;
  const options = optionRows(spec);
  return [
    `ami-pipeline ${name}: ${spec.summary}`,
    '',
    'Usage:',
    `  ami-pipeline ${spec.usage}`,
    '',
    'Options:',
    table(options).trimEnd(),
    ...(spec.notes ? ['', ...spec.notes] : []),
    '',
    spec.examples.length === 1 ? 'Example:' : 'Examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

export function commandNames(): string {
  return Object.keys(COMMANDS).join(', ');
}
