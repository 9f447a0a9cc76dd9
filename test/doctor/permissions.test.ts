/**
 * The doctor's role-permissions check (cli/permissions.ts): iam:SimulatePrincipalPolicy on the target role.
 * moto 5.2.1 does not implement SimulatePrincipalPolicy, so these run over aws-sdk-client-mock with AWS's
 * response shapes and error messages. The calls it simulates are evaluated against the shipped template in
 * test/iam/policies.test.ts.
 */
import { IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { permissionsCheck, runCalls } from '../../cli/permissions';
import { createClientFactory } from '../../functions/shared/clients';
import { ACCOUNT_A, awsError, item, KEY_A_EU } from '../support/fixtures';

const iamMock = mockClient(IAMClient);
const kmsMock = mockClient(KMSClient);
const ROLE = `arn:aws:iam::${ACCOUNT_A}:role/AmiPipelineTarget`;
const clients = () => createClientFactory('eu-west-1').builder();

beforeEach(() => {
  iamMock.reset();
  kmsMock.reset();
  kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: KEY_A_EU, Arn: KEY_A_EU } });
});

/** SimulatePrincipalPolicy's answer: one EvaluationResult per action and resource, as AWS returns them. */
function answer(deny: string[] = []) {
  iamMock.on(SimulatePrincipalPolicyCommand).callsFake((input: { ActionNames: string[]; ResourceArns: string[] }) => ({
    EvaluationResults: input.ActionNames.flatMap((action) =>
      input.ResourceArns.map((resource) => ({
        EvalActionName: action,
        EvalResourceName: resource,
        EvalDecision: deny.includes(action) ? 'implicitDeny' : 'allowed',
        MatchedStatements: [],
        MissingContextValues: [],
      })),
    ),
    IsTruncated: false,
  }));
}

describe('the doctor on the target role\'s own policies', () => {
  it('passes when the role allows every call a run makes, simulating them on the role with their resources and conditions', async () => {
    answer();
    const check = await permissionsCheck(item(), clients());
    expect(check.verdict).toBe('pass');
    expect(check.check).toBe('role-permissions');
    const sent = iamMock.commandCalls(SimulatePrincipalPolicyCommand).map((c) => c.args[0].input);
    expect(sent.every((i) => i.PolicySourceArn === ROLE)).toBe(true);
    const grant = sent.find((i) => i.ActionNames?.includes('kms:CreateGrant'));
    expect(grant?.ResourceArns).toEqual([KEY_A_EU]);
    expect(grant?.ContextEntries?.find((e) => e.ContextKeyName === 'kms:GranteePrincipal')?.ContextKeyValues).toEqual([
      `arn:aws:iam::${ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    ]);
    const copy = sent.find((i) => i.ActionNames?.includes('ec2:CopyImage'));
    expect(copy?.ResourceArns).toEqual(['arn:aws:ec2:eu-west-1::image/*', 'arn:aws:ec2:eu-west-1::snapshot/*']);
  });

  it('fails naming each call the role denies, with the fix', async () => {
    answer(['ec2:DeleteSnapshot', 'kms:CreateGrant']);
    const check = await permissionsCheck(item(), clients());
    expect(check.verdict).toBe('fail');
    expect(check.message).toContain('ec2:DeleteSnapshot on arn:aws:ec2:eu-west-1::snapshot/* (implicitDeny)');
    expect(check.message).toContain(`kms:CreateGrant on ${KEY_A_EU} (implicitDeny)`);
    expect(check.fix).toContain('templates/target-account.yml');
  });

  it('says it was not checked when the role may not simulate its own policies', async () => {
    iamMock
      .on(SimulatePrincipalPolicyCommand)
      .rejects(
        awsError(
          'AccessDenied',
          `User: arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/doctor is not authorized to perform: iam:SimulatePrincipalPolicy on resource: role AmiPipelineTarget because no identity-based policy allows the iam:SimulatePrincipalPolicy action`,
          403,
        ),
      );
    const check = await permissionsCheck(item(), clients());
    expect(check.verdict).toBe('warn');
    expect(check.message).toBe(`not checked: ${ROLE} may not call iam:SimulatePrincipalPolicy on itself`);
    expect(check.awsError).toContain('AccessDenied');
  });

  it('simulates the launch check of the mode the input asks for, and the publish parameter', () => {
    const asg = runCalls(item(), KEY_A_EU).flatMap((c) => c.actions);
    expect(asg).toContain('autoscaling:CreateAutoScalingGroup');
    const run = runCalls(item({}, { verify: { mode: 'run-instances', instanceType: null, timeoutMinutes: 15 }, publish: { parameterName: '/ami-pipeline/base', launchTemplates: [], protect: true } }), KEY_A_EU);
    expect(run.flatMap((c) => c.actions)).toContain('ec2:TerminateInstances');
    expect(run.flatMap((c) => c.actions)).not.toContain('autoscaling:CreateAutoScalingGroup');
    expect(run.find((c) => c.actions.includes('ssm:PutParameter'))?.resources).toEqual([`arn:aws:ssm:eu-west-1:${ACCOUNT_A}:parameter/ami-pipeline/base`]);
  });
});
