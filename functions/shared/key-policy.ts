/**
 * A small evaluator of KMS key policies: does a statement allow an account (its root, or a role in it)
 * the actions the pipeline needs? KMS has no dry run, so reading the policy is how we learn it before a copy fails.
 * Conditions are not evaluated: a statement with conditions counts as allowing (the run itself is the final word),
 * an unconditional Deny counts as denying.
 */

interface Statement {
  Effect?: string;
  Principal?: string | { AWS?: string | string[] };
  NotPrincipal?: unknown;
  Action?: string | string[];
  NotAction?: unknown;
  Condition?: unknown;
}

/**
 * What a target account needs on the source key to copy snapshots encrypted with it: EBS's documented set for a
 * shared encrypted snapshot (https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html; docs/iam.md).
 */
export const SOURCE_KEY_ACTIONS = [
  'kms:DescribeKey',
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
] as const;

/**
 * The key policy statements to add to a source key so that these accounts can copy its snapshots: the use of the
 * key (as AWS lists it: ReEncrypt*, GenerateDataKey*), and grants only for AWS resources (EBS's own, during the copy).
 */
export function sourceKeyPolicyStatements(accountIds: readonly string[], partition = 'aws'): Record<string, unknown>[] {
  const principal = { AWS: accountIds.map((a) => `arn:${partition}:iam::${a}:root`) };
  return [
    {
      Sid: 'AmiPipelineTargetsCopySnapshots',
      Effect: 'Allow',
      Principal: principal,
      Action: ['kms:DescribeKey', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
      Resource: '*',
    },
    {
      Sid: 'AmiPipelineTargetsGrantToEbs',
      Effect: 'Allow',
      Principal: principal,
      Action: 'kms:CreateGrant',
      Resource: '*',
      Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    },
  ];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function matches(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(value);
}

function principalMatches(statement: Statement, accountId: string): boolean {
  const p = statement.Principal;
  if (p === '*') return true;
  if (p === undefined || typeof p === 'string') return false;
  return list(p.AWS).some(
    (a) => a === '*' || a === accountId || a.startsWith(`arn:aws:iam::${accountId}:`) || /^arn:aws[-a-z]*:iam::(\d{12}):/.exec(a)?.[1] === accountId,
  );
}

function statements(policyJson: string): Statement[] {
  try {
    const doc = JSON.parse(policyJson) as { Statement?: Statement | Statement[] };
    return doc.Statement === undefined ? [] : Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  } catch {
    return [];
  }
}

/** The actions among `actions` that the policy does not allow `accountId` (empty when all are allowed). */
export function missingActions(policyJson: string, accountId: string, actions: readonly string[]): string[] {
  const all = statements(policyJson);
  return actions.filter((action) => {
    const applies = (s: Statement) => principalMatches(s, accountId) && list(s.Action).some((a) => matches(a, action));
    const denied = all.some((s) => s.Effect === 'Deny' && s.Condition === undefined && applies(s));
    const allowed = all.some((s) => s.Effect === 'Allow' && applies(s));
    return denied || !allowed;
  });
}
