/**
 * Every error the pipeline throws. The class names are the contract with the state machine:
 * Retry and Catch match on `error.name`, so each class sets it as a string literal (bundlers rename classes).
 * Retryable errors are transient (throttling, 5xx, copy-concurrency limits, eventual consistency);
 * terminal errors carry the AWS code and message and one sentence on what to fix.
 */

export interface AwsErrorDetail {
  code: string;
  message: string;
}

export abstract class PipelineError extends Error {
  abstract readonly retryable: boolean;
  readonly aws?: AwsErrorDetail;
  /** What the user should change (the message's last sentence), when the error says it. */
  readonly fix?: string;

  constructor(message: string, options: { cause?: unknown; aws?: AwsErrorDetail; fix?: string } = {}) {
    super(message, { cause: options.cause });
    if (options.aws) this.aws = options.aws;
    if (options.fix) this.fix = options.fix;
  }
}

abstract class RetryableError extends PipelineError {
  readonly retryable = true;
}

abstract class TerminalError extends PipelineError {
  readonly retryable = false;
}

// Retryable
export class AwsThrottlingError extends RetryableError {
  override name = 'AwsThrottlingError';
}
export class AwsServiceUnavailableError extends RetryableError {
  override name = 'AwsServiceUnavailableError';
}
export class CopyLimitExceededError extends RetryableError {
  override name = 'CopyLimitExceededError';
}
export class ImageNotYetVisibleError extends RetryableError {
  override name = 'ImageNotYetVisibleError';
}
export class GrantNotYetPropagatedError extends RetryableError {
  override name = 'GrantNotYetPropagatedError';
}
/** A new account's role or key is not there yet (its StackSet instance deploys asynchronously); retried for a bounded time. */
export class TargetNotYetDeployedError extends RetryableError {
  override name = 'TargetNotYetDeployedError';
}

// Terminal
/** How many problems an InvalidInputError's message lists; the rest are counted (100,000 repeated regions were 7.7 MB). */
export const MAX_LISTED_PROBLEMS = 20;

export class InvalidInputError extends TerminalError {
  override name = 'InvalidInputError';
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    const listed = issues.slice(0, MAX_LISTED_PROBLEMS);
    const more = issues.length - listed.length;
    super(
      `The pipeline input is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n- ${listed.join('\n- ')}` +
        (more > 0 ? `\n- ... and ${more} more (fix these and validate again)` : ''),
    );
    this.issues = issues;
  }
}
export class SourceImageNotFoundError extends TerminalError {
  override name = 'SourceImageNotFoundError';
}
export class SourceImageNotAvailableError extends TerminalError {
  override name = 'SourceImageNotAvailableError';
}
export class SourceNotEbsBackedError extends TerminalError {
  override name = 'SourceNotEbsBackedError';
}
export class SourceNotShareableError extends TerminalError {
  override name = 'SourceNotShareableError';
}
export class SourceKeyNotSharedError extends TerminalError {
  override name = 'SourceKeyNotSharedError';
}
export class TargetRoleNotAssumableError extends TerminalError {
  override name = 'TargetRoleNotAssumableError';
}
export class KmsKeyUnusableError extends TerminalError {
  override name = 'KmsKeyUnusableError';
}
export class ImageCopyFailedError extends TerminalError {
  override name = 'ImageCopyFailedError';
}
export class GrantFailedError extends TerminalError {
  override name = 'GrantFailedError';
}
export class LaunchFailedError extends TerminalError {
  override name = 'LaunchFailedError';
}
export class ProvenanceMismatchError extends TerminalError {
  override name = 'ProvenanceMismatchError';
}
export class PublishFailedError extends TerminalError {
  override name = 'PublishFailedError';
}
export class PreflightFailedError extends TerminalError {
  override name = 'PreflightFailedError';
}
/** Organizations refused to list the organization: neither organization.roleArn nor a delegated administrator is set up. */
export class OrganizationAccessDeniedError extends TerminalError {
  override name = 'OrganizationAccessDeniedError';
}
export class AccessDeniedError extends TerminalError {
  override name = 'AccessDeniedError';
}
export class ShareLedgerFullError extends TerminalError {
  override name = 'ShareLedgerFullError';
}
export class AwsRequestFailedError extends TerminalError {
  override name = 'AwsRequestFailedError';
}
/**
 * The run ended with failed targets or a share it could not revoke (FailRun): the message is the run's summary as JSON,
 * so the execution fails with it as its cause (functions/shared/run-failure.ts reads it back).
 */
export class RunFailedError extends TerminalError {
  override name = 'RunFailedError';
}

/** Names the state machine retries (after the Lambda service errors). */
export const RETRYABLE_ERROR_NAMES = [
  'AwsThrottlingError',
  'AwsServiceUnavailableError',
  'CopyLimitExceededError',
  'ImageNotYetVisibleError',
  'GrantNotYetPropagatedError',
  'TargetNotYetDeployedError',
] as const;

/** Names that end a target (or, before the fan-out, the run) without retry. */
export const TERMINAL_ERROR_NAMES = [
  'InvalidInputError',
  'SourceImageNotFoundError',
  'SourceImageNotAvailableError',
  'SourceNotEbsBackedError',
  'SourceNotShareableError',
  'SourceKeyNotSharedError',
  'TargetRoleNotAssumableError',
  'KmsKeyUnusableError',
  'ImageCopyFailedError',
  'GrantFailedError',
  'LaunchFailedError',
  'ProvenanceMismatchError',
  'PreflightFailedError',
  'PublishFailedError',
  'OrganizationAccessDeniedError',
  'AccessDeniedError',
  'ShareLedgerFullError',
  'AwsRequestFailedError',
  'RunFailedError',
] as const;

/** Raised by states of the definition itself (timeouts of the bounded wait loops). */
export const STATE_MACHINE_ERROR_NAMES = ['ImageCopyTimeoutError', 'LaunchCheckTimeoutError'] as const;

/**
 * Errors Step Functions raises around a Lambda invoke; retried before ours. The first four are AWS's recommended
 * Lambda retrier (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html).
 */
export const LAMBDA_SERVICE_ERROR_NAMES = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.TooManyRequestsException',
  'Lambda.Unknown',
] as const;

const THROTTLING_CODES = new Set([
  'TooManyUpdates',
  'RequestLimitExceeded',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'PriorRequestNotComplete',
]);

const UNAVAILABLE_CODES = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Unavailable',
  'KMSInternalException',
  'DependencyTimeoutException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

const ACCESS_DENIED_CODES = new Set([
  'AuthorizationError',
  'NotAuthorizedForSourceException',
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthFailure',
  'InvalidClientTokenId',
  'ExpiredToken',
  'OptInRequired',
]);

interface SdkLikeError {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $fault?: unknown;
}

/** The AWS error code and message of anything an SDK call can throw. */
export function awsErrorDetail(error: unknown): AwsErrorDetail {
  if (typeof error === 'object' && error !== null) {
    const e = error as SdkLikeError;
    const code =
      typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : typeof e.code === 'string' ? e.code : 'Unknown';
    const message = typeof e.message === 'string' ? e.message : String(error);
    return { code, message };
  }
  return { code: 'Unknown', message: String(error) };
}

/** The AWS error code behind an SDK error or a pipeline error that translated one. */
export function awsCode(error: unknown): string {
  if (error instanceof PipelineError) return error.aws?.code ?? error.name;
  return awsErrorDetail(error).code;
}

function httpStatus(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null) return (error as SdkLikeError).$metadata?.httpStatusCode;
  return undefined;
}

/**
 * Translate an AWS SDK error into a pipeline error. `action` says what was being done
 * ("copying ami-1 into 111111111111/eu-west-1"), `fix` what the user should change when the error is terminal.
 * Pipeline errors pass through unchanged.
 */
export function toPipelineError(error: unknown, action: string, fix?: string): PipelineError {
  if (error instanceof PipelineError) return error;
  const aws = awsErrorDetail(error);
  const status = httpStatus(error);
  const base = `${action} failed: ${aws.code}: ${aws.message}`;
  const withFix = (f: string) => `${base}${/[.!?]$/.test(base) ? '' : '.'} ${f}`;
  if (THROTTLING_CODES.has(aws.code) || status === 429) return new AwsThrottlingError(base, { cause: error, aws });
  if (aws.code === 'ResourceLimitExceeded') return new CopyLimitExceededError(base, { cause: error, aws });
  if (UNAVAILABLE_CODES.has(aws.code) || (status !== undefined && status >= 500)) {
    return new AwsServiceUnavailableError(base, { cause: error, aws });
  }
  if (ACCESS_DENIED_CODES.has(aws.code)) {
    const accessFix = fix ?? 'Grant the pipeline role (or the target role) the permission named above; see "IAM a target account needs" in docs/deploy.md.';
    return new AccessDeniedError(withFix(accessFix), { cause: error, aws, fix: accessFix });
  }
  return new AwsRequestFailedError(fix ? withFix(fix) : base, { cause: error, aws, ...(fix ? { fix } : {}) });
}

/** An AWS error code, or a code prefix ending in "*" (`InvalidAMIID.*`). */
export type CodePattern = string;

export function codeMatches(code: string, patterns: readonly CodePattern[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? code.startsWith(p.slice(0, -1)) : code === p));
}

/** EC2's answers for an image ID that names no image (any more): InvalidAMIID.NotFound, .Unavailable, .Malformed. */
export const IMAGE_GONE: readonly CodePattern[] = ['InvalidAMIID.*'];
/** EC2's answer for a snapshot ID that names no snapshot (any more). */
export const SNAPSHOT_GONE: readonly CodePattern[] = ['InvalidSnapshot.NotFound'];
/** SSM's answer for a parameter that does not exist. */
export const PARAMETER_ABSENT: readonly CodePattern[] = ['ParameterNotFound'];
/** KMS's answers for a key that is gone or cannot be used (deleted, pending deletion, disabled). */
export const KEY_UNUSABLE: readonly CodePattern[] = ['NotFoundException', 'KMSInvalidStateException', 'DisabledException'];

/** Makes a pipeline error of an AWS error: `(detail, options) => new KmsKeyUnusableError(message, options)`. */
export type AwsErrorFactory = (detail: AwsErrorDetail, options: { cause: unknown; aws: AwsErrorDetail }) => Error;

export interface AwsCallOptions<T> {
  /** What the user should change when the error is terminal (the last sentence of its message). */
  fix?: string;
  /** Codes whose fix is another sentence than `fix`. */
  fixes?: Readonly<Record<CodePattern, string>>;
  /** Codes meaning "not there": the call resolves to undefined instead of failing. */
  absentOn?: readonly CodePattern[];
  /** Codes that become a pipeline error of their own; the factory's `options` carry the cause and the AWS code and message. */
  errors?: Readonly<Record<CodePattern, AwsErrorFactory>>;
  /** Codes the caller answers itself: the handler's value is the call's result (or it throws). */
  on?: Readonly<Record<CodePattern, (detail: AwsErrorDetail, error: unknown) => T>>;
}

/** The entry of a by-code map whose pattern matches `code`. */
function matching<V>(byCode: Readonly<Record<CodePattern, V>>, code: string): V | undefined {
  return Object.entries(byCode).find(([pattern]) => codeMatches(code, [pattern]))?.[1];
}

/**
 * Run an AWS call and translate whatever it throws: pipeline errors (a target role that cannot be assumed) pass
 * through; `on`, `errors` and `absentOn` are looked at in that order; anything else goes through toPipelineError with
 * the code's fix (`fixes`, else `fix`).
 */
export async function aws<T>(action: string, call: () => Promise<T>, options: AwsCallOptions<T> & { absentOn: readonly CodePattern[] }): Promise<T | undefined>;
export async function aws<T>(action: string, call: () => Promise<T>, options?: string | AwsCallOptions<T>): Promise<T>;
export async function aws<T>(action: string, call: () => Promise<T>, options: string | AwsCallOptions<T> = {}): Promise<T | undefined> {
  const { fix, fixes = {}, absentOn = [], errors = {}, on = {} } = typeof options === 'string' ? { fix: options } : options;
  try {
    return await call();
  } catch (error) {
    if (error instanceof PipelineError) throw error;
    const detail = awsErrorDetail(error);
    const handler = matching(on, detail.code);
    if (handler) return handler(detail, error);
    const translate = matching(errors, detail.code);
    if (translate) throw translate(detail, { cause: error, aws: detail });
    if (codeMatches(detail.code, absentOn)) return undefined;
    throw toPipelineError(error, action, matching(fixes, detail.code) ?? fix);
  }
}
