/**
 * templates/target-account.yml: valid against the CloudFormation resource specification, and its role allows
 * every AWS call the functions make inside a target account (collected from state machine runs over every path)
 * and nothing broader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTemplate, loadTemplate, type Template } from '../support/cfn';
import { BUILDER } from '../support/fixtures';
import { recordCalls } from '../iam/record';

const template = loadTemplate(new URL('../../templates/target-account.yml', import.meta.url));

/** Permissions EBS needs through EC2 on the caller's behalf, which the functions never call themselves. */
const THROUGH_EC2 = ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'];
/** Auto Scaling creates its service-linked role on first use, as the caller. */
const SERVICE_LINKED_ROLE = 'iam:CreateServiceLinkedRole';

type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };

function roleStatements(t: Template): Statement[] {
  const role = t.Resources.PipelineTargetRole?.Properties as { Policies: { PolicyDocument: { Statement: Statement[] } }[] };
  return role.Policies.flatMap((p) => p.PolicyDocument.Statement);
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const matches = (pattern: string, action: string) => new RegExp(`^${pattern.replace(/\*/g, '.*')}$`, 'i').test(action);

/**
 * IAM actions AWS evaluates for the calls the functions and the CLI (restore, the doctor's checks) make inside target
 * accounts, from the policy test's recording of every path (test/iam/record.ts, test/iam/requests.ts), which also evaluates them properly.
 */
async function callsInsideTargets(): Promise<Set<string>> {
  const actions = new Set<string>();
  for (const { call, requests } of await recordCalls()) {
    if (call.account === BUILDER || call.service === 'sts') continue;
    for (const request of requests ?? []) actions.add(request.action);
  }
  return actions;
}

describe('the target-account template', () => {
  let needed: Set<string>;
  beforeAll(async () => {
    needed = await callsInsideTargets();
  }, 60_000);
  afterAll(() => undefined);

  it('matches the CloudFormation resource specification', async () => {
    expect(await checkTemplate(template)).toEqual([]);
  });

  it('would be caught by the specification check when wrong', async () => {
    const broken = structuredClone(template);
    (broken.Resources.AmiEncryptionKey?.Properties as Record<string, unknown>).EnableRotation = true;
    broken.Resources.Extra = { Type: 'AWS::KMS::Alias', Properties: { TargetKeyId: { Ref: 'NoSuchKey' } } };
    const problems = await checkTemplate(broken);
    expect(problems).toContain('AmiEncryptionKey.EnableRotation: not a property of AWS::KMS::Key');
    expect(problems).toContain('Extra.AliasName: required by AWS::KMS::Alias but missing');
    expect(problems).toContain('Extra: Ref to unknown NoSuchKey');
  });

  it('lets the role make every call the functions make in a target account', () => {
    expect(needed.size).toBeGreaterThan(25);
    const allowed = roleStatements(template).flatMap(actionsOf);
    for (const action of needed) expect(allowed.some((p) => matches(p, action)), action).toBe(true);
  });

  it('allows nothing broader: every action is called, needed by EBS through EC2, or the Auto Scaling service-linked role', () => {
    for (const statement of roleStatements(template)) {
      expect(statement.Effect).toBe('Allow');
      for (const action of actionsOf(statement)) {
        expect(action).not.toMatch(/^(\*|[a-z0-9]+:\*)$/);
        const called = needed.has(action);
        const ebs = THROUGH_EC2.includes(action) && JSON.stringify(statement.Condition ?? {}).includes('kms:ViaService');
        const slr = action === SERVICE_LINKED_ROLE && JSON.stringify(statement.Condition ?? {}).includes('autoscaling.amazonaws.com');
        expect(called || ebs || slr, `${statement.Sid ?? ''}: ${action}`).toBe(true);
      }
    }
  });

  it('has a key with rotation and a key policy without kms:*, and a role trusting only the pipeline role', () => {
    const key = template.Resources.AmiEncryptionKey?.Properties as { EnableKeyRotation: boolean; KeyPolicy: { Statement: Statement[] } };
    expect(key.EnableKeyRotation).toBe(true);
    for (const s of key.KeyPolicy.Statement) expect(actionsOf(s)).not.toContain('kms:*');
    const trust = (template.Resources.PipelineTargetRole?.Properties as { AssumeRolePolicyDocument: { Statement: { Principal: { AWS: unknown } }[] } })
      .AssumeRolePolicyDocument.Statement;
    expect(trust).toHaveLength(1);
    expect(JSON.stringify(trust[0]?.Principal.AWS)).toContain(':role/${PipelineRoleName}');
    expect(JSON.stringify(trust[0])).toContain('sts:ExternalId');
    expect(JSON.stringify(trust[0])).toContain('aws:PrincipalOrgID');
  });

  it('works as a service-managed StackSet: the same parameters in every region create the role once, a key everywhere, and keep the key when an instance is removed', () => {
    type Cond = Record<string, unknown>;
    const conditions = (template.Conditions ?? {}) as Record<string, Cond>;
    const params = template.Parameters as Record<string, { Default?: string; AllowedPattern?: string }>;
    // What CloudFormation evaluates per stack instance: the StackSet's parameters plus the instance's own region.
    const evaluate = (c: unknown, region: string, given: Record<string, string>): unknown => {
      const v = c as Record<string, unknown[]> & { Ref?: string; Condition?: string };
      if (typeof c === 'string') return c;
      if (v.Ref !== undefined) return v.Ref === 'AWS::Region' ? region : (given[v.Ref] ?? params[v.Ref]?.Default ?? '');
      if (v.Condition !== undefined) return evaluate(conditions[v.Condition], region, given);
      if (v['Fn::Equals']) return evaluate(v['Fn::Equals'][0], region, given) === evaluate(v['Fn::Equals'][1], region, given);
      if (v['Fn::Not']) return !evaluate(v['Fn::Not'][0], region, given);
      throw new Error(`condition ${JSON.stringify(c)} is not modelled`);
    };
    const regions = ['eu-west-1', 'eu-central-1', 'us-east-1'];
    const given = { PipelineAccountId: '999999999999', RoleRegion: 'eu-central-1', OrganizationId: 'o-abcdefghij' };
    const created = (region: string) =>
      Object.entries(template.Resources).filter(([, r]) => !r.Condition || evaluate(conditions[r.Condition], region, given) === true).map(([id]) => id);
    expect(regions.filter((r) => created(r).includes('PipelineTargetRole'))).toEqual(['eu-central-1']);
    for (const region of regions) expect(created(region)).toEqual(expect.arrayContaining(['AmiEncryptionKey', 'AmiEncryptionKeyAlias']));
    // A RoleRegion outside the StackSet's regions would create no role: the parameter only takes region names.
    expect(new RegExp(params.RoleRegion?.AllowedPattern ?? '').test('eu-central-1')).toBe(true);
    expect(new RegExp(params.RoleRegion?.AllowedPattern ?? '').test('eu-central')).toBe(false);
    const key = template.Resources.AmiEncryptionKey as unknown as { DeletionPolicy?: string; UpdateReplacePolicy?: string };
    expect([key.DeletionPolicy, key.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
  });
});
