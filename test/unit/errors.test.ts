import { describe, expect, it } from 'vitest';
import {
  AccessDeniedError,
  OrganizationAccessDeniedError,
  ShareLedgerFullError,
  TargetNotYetDeployedError,
  aws,
  awsCode,
  AwsRequestFailedError,
  AwsServiceUnavailableError,
  AwsThrottlingError,
  CopyLimitExceededError,
  GrantFailedError,
  GrantNotYetPropagatedError,
  ImageCopyFailedError,
  ImageNotYetVisibleError,
  InvalidInputError,
  KmsKeyUnusableError,
  LaunchFailedError,
  PreflightFailedError,
  ProvenanceMismatchError,
  PublishFailedError,
  type PipelineError,
  RETRYABLE_ERROR_NAMES,
  RunFailedError,
  SourceImageNotAvailableError,
  SourceImageNotFoundError,
  SourceKeyNotSharedError,
  SourceNotEbsBackedError,
  SourceNotShareableError,
  TargetRoleNotAssumableError,
  TERMINAL_ERROR_NAMES,
  toPipelineError,
} from '../../functions/shared/errors';
import { missingActions, SOURCE_KEY_ACTIONS } from '../../functions/shared/key-policy';
import { ACCOUNT_A, ACCOUNT_B, awsError } from '../support/fixtures';

describe('toPipelineError', () => {
  const action = `Copying ami-0123456789abcdef0 into ${ACCOUNT_A}/eu-west-1`;

  it.each([
    ['RequestLimitExceeded', 'Request limit exceeded.', 503],
    ['ThrottlingException', 'Rate exceeded', 400],
    ['Throttling', 'Rate exceeded', 400],
    ['TooManyRequestsException', 'Too many requests', 429],
  ])('turns %s into a retryable AwsThrottlingError', (code, message, status) => {
    const cause = awsError(code, message, status);
    const error = toPipelineError(cause, action);
    expect(error).toBeInstanceOf(AwsThrottlingError);
    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
    expect(error.aws).toEqual({ code, message });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe(`${action} failed: ${code}: ${message}`);
  });

  it('turns an unknown code answered with HTTP 429 into AwsThrottlingError', () => {
    expect(toPipelineError(awsError('SomethingNew', 'Slow down', 429), action).name).toBe('AwsThrottlingError');
  });

  it('turns ResourceLimitExceeded into a retryable CopyLimitExceededError', () => {
    const error = toPipelineError(
      awsError('ResourceLimitExceeded', 'You have reached the limit for concurrent image copies. Wait for a copy to complete and try again.'),
      action,
    );
    expect(error).toBeInstanceOf(CopyLimitExceededError);
    expect(error.name).toBe('CopyLimitExceededError');
    expect(error.retryable).toBe(true);
  });

  it.each([
    ['ServiceUnavailable', 'The service is unavailable. Please try again shortly.', 503],
    ['InternalError', 'An internal error has occurred', 500],
    ['KMSInternalException', 'Internal failure', 500],
    ['SomethingNew', 'Bad gateway', 502],
  ])('turns %s (HTTP %s) into a retryable AwsServiceUnavailableError', (code, message, status) => {
    const error = toPipelineError(awsError(code, message, status), action);
    expect(error).toBeInstanceOf(AwsServiceUnavailableError);
    expect(error.name).toBe('AwsServiceUnavailableError');
    expect(error.retryable).toBe(true);
  });

  it('turns UnauthorizedOperation into a terminal AccessDeniedError carrying the given fix', () => {
    const error = toPipelineError(
      awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
      action,
      'The target role needs ec2:CopyImage.',
    );
    expect(error).toBeInstanceOf(AccessDeniedError);
    expect(error.name).toBe('AccessDeniedError');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(new RegExp(`^${action} failed: UnauthorizedOperation: You are not authorized to perform this operation\\.`));
    expect(error.message).toMatch(/ The target role needs ec2:CopyImage\.$/);
    expect(error.aws).toEqual({ code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' });
  });

  it('points an AccessDeniedException without a fix of its own to docs/deploy.md', () => {
    const error = toPipelineError(
      awsError('AccessDeniedException', `User: arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/x is not authorized to perform: kms:CreateGrant`),
      action,
    );
    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('kms:CreateGrant');
    expect(error.message).toContain('"IAM a target account needs" in docs/deploy.md');
  });

  it('turns an unknown code into a terminal AwsRequestFailedError carrying its code and message', () => {
    const cause = awsError('InvalidParameter', "Snapshots encrypted with the AWS Managed CMK can't be shared.");
    const error = toPipelineError(cause, action);
    expect(error).toBeInstanceOf(AwsRequestFailedError);
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'InvalidParameter', message: "Snapshots encrypted with the AWS Managed CMK can't be shared." });
    expect(error.message).toBe(`${action} failed: InvalidParameter: Snapshots encrypted with the AWS Managed CMK can't be shared.`);
    expect(error.cause).toBe(cause);
  });

  it('appends the fix to an AwsRequestFailedError', () => {
    const error = toPipelineError(
      awsError('InvalidRequest', 'Snapshot snap-0123456789abcdef0 is encrypted. Creating an unencrypted copy from an encrypted snapshot is not supported.'),
      action,
      'Give a KMS key.',
    );
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.message).toContain('Creating an unencrypted copy from an encrypted snapshot is not supported.');
    expect(error.message).toMatch(/ Give a KMS key\.$/);
  });

  it('reads the code of a thrown non-SDK value as Unknown', () => {
    const error = toPipelineError('socket hang up', action);
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.aws).toEqual({ code: 'Unknown', message: 'socket hang up' });
  });

  it('passes a pipeline error through unchanged', () => {
    const original = new ImageCopyFailedError('The copy failed.');
    expect(toPipelineError(original, action)).toBe(original);
  });
});

describe('aws', () => {
  it('returns what the call returns', async () => {
    await expect(aws('Describing', async () => 42)).resolves.toBe(42);
  });

  it('rejects with the translated error', async () => {
    await expect(
      aws('Describing images', () => Promise.reject(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))),
    ).rejects.toMatchObject({ name: 'AwsThrottlingError', aws: { code: 'RequestLimitExceeded' } });
  });

  it("gives a code the fix `fixes` names for it, every other code `fix`, and keeps the fix on the error", async () => {
    const options = { fix: 'Let the role describe the key.', fixes: { NotFoundException: 'Create the key.' } };
    await expect(aws('Describing alias/k', () => Promise.reject(awsError('NotFoundException', 'Alias alias/k is not found.', 400)), options)).rejects.toMatchObject({
      name: 'AwsRequestFailedError',
      message: 'Describing alias/k failed: NotFoundException: Alias alias/k is not found. Create the key.',
      fix: 'Create the key.',
    });
    await expect(aws('Describing alias/k', () => Promise.reject(awsError('AccessDeniedException', 'not authorized', 400)), options)).rejects.toMatchObject({
      name: 'AccessDeniedError',
      fix: 'Let the role describe the key.',
    });
  });

  it('answers the codes `on` names with its handler, resolves the `absentOn` codes to undefined, and makes the `errors` of theirs', async () => {
    const gone = () => Promise.reject(awsError('ExecutionDoesNotExist', 'Execution does not exist', 400));
    await expect(aws('Describing', gone, { on: { ExecutionDoesNotExist: (detail) => detail.code } })).resolves.toBe('ExecutionDoesNotExist');
    await expect(aws('Describing', gone, { absentOn: ['Execution*'] })).resolves.toBeUndefined();
    await expect(aws('Describing', gone, { errors: { ExecutionDoesNotExist: (d, o) => new InvalidInputError([`executionArn: ${d.message} (${String(o.aws.code)})`]) } })).rejects.toMatchObject({
      name: 'InvalidInputError',
    });
  });
});

describe('awsCode', () => {
  it('reads the AWS code behind a translated error', () => {
    const error = toPipelineError(awsError('InvalidAMIID.NotFound', "The image id '[ami-0123456789abcdef0]' does not exist"), 'x');
    expect(error.name).toBe('AwsRequestFailedError');
    expect(awsCode(error)).toBe('InvalidAMIID.NotFound');
  });

  it('reads the code of an SDK error, and the name of a pipeline error without one', () => {
    expect(awsCode(awsError('InvalidSnapshot.NotFound', "The snapshot 'snap-0123456789abcdef0' does not exist."))).toBe('InvalidSnapshot.NotFound');
    expect(awsCode(new LaunchFailedError('no'))).toBe('LaunchFailedError');
  });
});

describe('error names', () => {
  const all: PipelineError[] = [
    new AwsThrottlingError('x'),
    new AwsServiceUnavailableError('x'),
    new CopyLimitExceededError('x'),
    new ImageNotYetVisibleError('x'),
    new GrantNotYetPropagatedError('x'),
    new TargetNotYetDeployedError('x'),
    new InvalidInputError(['x']),
    new SourceImageNotFoundError('x'),
    new SourceImageNotAvailableError('x'),
    new SourceNotEbsBackedError('x'),
    new SourceNotShareableError('x'),
    new SourceKeyNotSharedError('x'),
    new TargetRoleNotAssumableError('x'),
    new KmsKeyUnusableError('x'),
    new ImageCopyFailedError('x'),
    new GrantFailedError('x'),
    new LaunchFailedError('x'),
    new ProvenanceMismatchError('x'),
    new PreflightFailedError('x'),
    new PublishFailedError('x'),
    new OrganizationAccessDeniedError('x'),
    new ShareLedgerFullError('x'),
    new AccessDeniedError('x'),
    new AwsRequestFailedError('x'),
    new RunFailedError('x'),
  ];

  it('lists every retryable error in RETRYABLE_ERROR_NAMES and every terminal one in TERMINAL_ERROR_NAMES', () => {
    expect(all.filter((e) => e.retryable).map((e) => e.name).sort()).toEqual([...RETRYABLE_ERROR_NAMES].sort());
    expect(all.filter((e) => !e.retryable).map((e) => e.name).sort()).toEqual([...TERMINAL_ERROR_NAMES].sort());
  });

  it('gives each error a name of its own that ends in Error', () => {
    expect(new Set(all.map((e) => e.name)).size).toBe(all.length);
    for (const e of all) expect(e.name).toMatch(/^[A-Z][A-Za-z]+Error$/);
  });

  it('counts the problems of an InvalidInputError in its message', () => {
    expect(new InvalidInputError(['a: bad']).message).toBe('The pipeline input is invalid (1 problem):\n- a: bad');
    expect(new InvalidInputError(['a: bad', 'b: worse']).message).toBe('The pipeline input is invalid (2 problems):\n- a: bad\n- b: worse');
  });
});

describe('missingActions', () => {
  const ACTIONS = [...SOURCE_KEY_ACTIONS];
  const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
  const allow = (principal: unknown, action: string | string[] = ACTIONS, extra: object = {}) => ({
    Effect: 'Allow',
    Principal: principal,
    Action: action,
    Resource: '*',
    ...extra,
  });
  const root = (account: string) => `arn:aws:iam::${account}:root`;

  it('finds nothing missing when the account root is allowed the listed actions', () => {
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) })), ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it('finds every action missing for an account the policy does not name', () => {
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) })), ACCOUNT_B, ACTIONS)).toEqual(ACTIONS);
  });

  it('lists exactly the actions the policy leaves out', () => {
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) }, ['kms:Decrypt', 'kms:DescribeKey'])), ACCOUNT_A, ACTIONS)).toEqual([
      'kms:CreateGrant',
      'kms:ReEncryptFrom',
      'kms:ReEncryptTo',
      'kms:GenerateDataKey',
      'kms:GenerateDataKeyWithoutPlaintext',
    ]);
  });

  it.each([
    ['kms:*', 'kms:*'],
    ['*', '*'],
    ['kms:ReEncrypt* and kms:Describe*', ['kms:Decrypt', 'kms:Describe*', 'kms:CreateGrant', 'kms:ReEncrypt*', 'kms:GenerateDataKey*']],
    ['kms:?ecrypt with the others', ['kms:?ecrypt', 'kms:DescribeKey', 'kms:CreateGrant', 'kms:ReEncrypt*', 'kms:GenerateDataKey*']],
    ['actions in another case', ['KMS:decrypt', 'kms:describekey', 'kms:CREATEGRANT', 'kms:reencrypt*', 'KMS:GENERATEDATAKEY*']],
  ])('matches the wildcard or case form %s', (_what, action) => {
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) }, action)), ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it('does not let a wildcard match more than it says', () => {
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) }, 'kms:Re*')), ACCOUNT_A, ACTIONS)).toEqual([
      'kms:DescribeKey',
      'kms:CreateGrant',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'kms:GenerateDataKeyWithoutPlaintext',
    ]);
    expect(missingActions(policy(allow({ AWS: root(ACCOUNT_A) }, 'kms.Decrypt')), ACCOUNT_A, ['kms:Decrypt'])).toEqual(['kms:Decrypt']);
  });

  it.each([
    ['the account root ARN', { AWS: root(ACCOUNT_A) }],
    ['the bare account ID', { AWS: ACCOUNT_A }],
    ['a role ARN in the account', { AWS: `arn:aws:iam::${ACCOUNT_A}:role/AmiPipelineTarget` }],
    ['a root ARN in another partition', { AWS: `arn:aws-us-gov:iam::${ACCOUNT_A}:root` }],
    ['a list that includes the account', { AWS: [root(ACCOUNT_B), root(ACCOUNT_A)] }],
    ['the AWS wildcard', { AWS: '*' }],
    ['the bare wildcard', '*'],
  ])('accepts the principal form %s', (_what, principal) => {
    expect(missingActions(policy(allow(principal)), ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it.each([
    ['another account root', { AWS: root(ACCOUNT_B) }],
    ['an account ID that only starts like the account', { AWS: `${ACCOUNT_A}1` }],
    ['a service principal', { Service: 'ec2.amazonaws.com' }],
    ['no principal at all', undefined],
  ])('refuses the principal form %s', (_what, principal) => {
    expect(missingActions(policy(allow(principal)), ACCOUNT_A, ACTIONS)).toEqual(ACTIONS);
  });

  it('lets an unconditional Deny win over an Allow', () => {
    const doc = policy(
      allow({ AWS: root(ACCOUNT_A) }, 'kms:*'),
      { Effect: 'Deny', Principal: { AWS: root(ACCOUNT_A) }, Action: 'kms:CreateGrant', Resource: '*' },
    );
    expect(missingActions(doc, ACCOUNT_A, ACTIONS)).toEqual(['kms:CreateGrant']);
  });

  it('applies a Deny to everyone to the account too', () => {
    const doc = policy(allow({ AWS: root(ACCOUNT_A) }), { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' });
    expect(missingActions(doc, ACCOUNT_A, ACTIONS)).toEqual(['kms:Decrypt']);
  });

  it('does not count a Deny with a condition, nor a Deny of another account', () => {
    const doc = policy(
      allow({ AWS: root(ACCOUNT_A) }),
      { Effect: 'Deny', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
      { Effect: 'Deny', Principal: { AWS: root(ACCOUNT_B) }, Action: 'kms:*', Resource: '*' },
    );
    expect(missingActions(doc, ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it('counts an Allow with a condition as allowing', () => {
    const doc = policy(allow({ AWS: root(ACCOUNT_A) }, ACTIONS, { Condition: { StringEquals: { 'kms:ViaService': 'ec2.eu-west-1.amazonaws.com' } } }));
    expect(missingActions(doc, ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it('reads a policy whose Statement is a single object', () => {
    expect(missingActions(JSON.stringify({ Statement: allow({ AWS: root(ACCOUNT_A) }) }), ACCOUNT_A, ACTIONS)).toEqual([]);
  });

  it('does not count a NotAction statement as allowing', () => {
    const doc = policy({ Effect: 'Allow', Principal: { AWS: root(ACCOUNT_A) }, NotAction: 'kms:ScheduleKeyDeletion', Resource: '*' });
    expect(missingActions(doc, ACCOUNT_A, ['kms:Decrypt'])).toEqual(['kms:Decrypt']);
  });

  it.each([['not JSON', '{"Statement": ['], ['empty', '{}'], ['JSON null', 'null']])('finds every action missing in a policy that is %s', (_what, doc) => {
    expect(missingActions(doc, ACCOUNT_A, ACTIONS)).toEqual(ACTIONS);
  });
});
