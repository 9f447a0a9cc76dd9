/** An error the CLI reports as one line, with the exit code it means: 2 for usage and input, 1 for a failed run. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
    /** A second line: what to try. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const USAGE_HINT = "run 'ami-pipeline --help' for usage";

/** A usage error; with `command`, the hint points at that command's own --help. */
export function usageError(message: string, command?: string): CliError {
  return new CliError(message, 2, command ? `run 'ami-pipeline ${command} --help' for usage` : USAGE_HINT);
}

/** The SDK found no credentials anywhere in its chain: say so, and how to give some, in one line. */
export function noCredentialsMessage(error: Error): string {
  return (
    `no AWS credentials found (${error.message}): set AWS_PROFILE to a profile of your AWS config (aws configure, aws sso login), ` +
    'or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)'
  );
}
