/**
 * The doctor's look at the target role's own IAM policies: iam:SimulatePrincipalPolicy on the role, as the role,
 * for the calls a run makes in the account (with the resources and conditions the run would present). AWS lets
 * a principal simulate its own policies only when its policies allow iam:SimulatePrincipalPolicy on itself; the
 * target template does not grant it, so by default the check says it was not checked and why. Identity policies
 * only: key policies and SCPs are the other checks' and the run's to prove (docs/iam.md).
 */
import { type ContextEntry, type EvaluationResult, paginateSimulatePrincipalPolicy } from '@aws-sdk/client-iam';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { autoScalingRoleArn, GRANT_OPERATIONS } from '../functions/shared/grants';
import { partitionOf, roleArn, type Clients } from '../functions/shared/client-factory';
import { awsErrorDetail } from '../functions/shared/errors';
import type { Check, CheckedTarget } from '../functions/shared/preflight';
import { MANAGED_BY, TAGS } from '../functions/shared/tags';

interface Simulated {
  actions: string[];
  resources: string[];
  context?: ContextEntry[];
}

const strings = (key: string, values: string[]): ContextEntry => ({ ContextKeyName: key, ContextKeyValues: values, ContextKeyType: values.length > 1 ? 'stringList' : 'string' });

/** The calls a run makes as the target role in one account and region, grouped by resource and context. */
export function runCalls(item: CheckedTarget, keyArn: string | undefined): Simulated[] {
  const { accountId, region } = item.target;
  const p = partitionOf(region);
  const ec2 = (type: string) => `arn:${p}:ec2:${region}:${accountId}:${type}/*`;
  const tagged = [strings(`aws:RequestTag/${TAGS.managedBy}`, [MANAGED_BY])];
  const own = [strings(`aws:ResourceTag/${TAGS.managedBy}`, [MANAGED_BY])];
  const calls: Simulated[] = [
    {
      actions: [
        'ec2:DescribeImages', 'ec2:DescribeSnapshots', 'ec2:DescribeSubnets', 'ec2:GetEbsEncryptionByDefault', 'ec2:GetEbsDefaultKmsKeyId',
        'ec2:DescribeInstances', 'ec2:DescribeVolumes', 'ec2:DescribeLaunchTemplates', 'ec2:DescribeLaunchTemplateVersions',
        'autoscaling:DescribeAutoScalingGroups', 'autoscaling:DescribeScalingActivities', 'ec2:DescribeImageReferences',
      ],
      resources: ['*'],
    },
    { actions: ['ec2:CopyImage'], resources: [`arn:${p}:ec2:${region}::image/*`, `arn:${p}:ec2:${region}::snapshot/*`], context: tagged },
    { actions: ['ec2:DeregisterImage', 'ec2:CreateTags'], resources: [`arn:${p}:ec2:${region}::image/*`], context: own },
    // The copy's life cycle (docs/lifecycle.md): deprecation, protection, the grace period.
    {
      actions: ['ec2:EnableImageDeprecation', 'ec2:EnableImageDeregistrationProtection', 'ec2:DisableImageDeregistrationProtection', 'ec2:DisableImage', 'ec2:DeleteTags'],
      resources: [`arn:${p}:ec2:${region}::image/*`],
      context: own,
    },
    { actions: ['ec2:DeleteSnapshot', 'ec2:CreateTags'], resources: [`arn:${p}:ec2:${region}::snapshot/*`], context: own },
    { actions: ['iam:GetRole'], resources: [autoScalingRoleArn(accountId, region)] },
  ];
  if (item.settings.verify.mode === 'run-instances') {
    calls.push({ actions: ['ec2:RunInstances'], resources: [ec2('instance'), ec2('volume')], context: tagged });
    calls.push({ actions: ['ec2:TerminateInstances'], resources: [ec2('instance')], context: own });
  }
  if (item.settings.verify.mode === 'auto-scaling') {
    calls.push({ actions: ['ec2:CreateLaunchTemplate', 'ec2:RunInstances'], resources: [ec2('launch-template')], context: tagged });
    calls.push({ actions: ['ec2:DeleteLaunchTemplate'], resources: [ec2('launch-template')], context: own });
    calls.push({ actions: ['ec2:RunInstances'], resources: [ec2('instance'), ec2('volume')], context: tagged });
    calls.push({ actions: ['autoscaling:CreateAutoScalingGroup'], resources: [`arn:${p}:autoscaling:${region}:${accountId}:autoScalingGroup:*:autoScalingGroupName/ami-pipeline-verify-*`], context: tagged });
    calls.push({ actions: ['autoscaling:DeleteAutoScalingGroup'], resources: [`arn:${p}:autoscaling:${region}:${accountId}:autoScalingGroup:*:autoScalingGroupName/ami-pipeline-verify-*`] });
  }
  if (keyArn) {
    calls.push({ actions: ['kms:DescribeKey', 'kms:ListGrants', 'kms:GetKeyPolicy'], resources: [keyArn] });
    calls.push({
      actions: ['kms:CreateGrant'],
      resources: [keyArn],
      context: [strings('kms:GranteePrincipal', [autoScalingRoleArn(accountId, region)]), strings('kms:GrantOperations', [...GRANT_OPERATIONS])],
    });
    calls.push({
      actions: ['kms:Decrypt', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
      resources: [keyArn],
      context: [strings('kms:ViaService', [`ec2.${region}.amazonaws.com`])],
    });
  }
  const parameter = item.settings.publish.parameterName;
  if (parameter && !parameter.includes('{')) {
    calls.push({ actions: ['ssm:GetParameter', 'ssm:PutParameter'], resources: [`arn:${p}:ssm:${region}:${accountId}:parameter/${parameter.replace(/^\//, '')}`] });
  }
  return calls;
}

/** One check: the role's own policies allow every call a run makes, or which they deny; or why it was not checked. */
export async function permissionsCheck(item: CheckedTarget, clients: Clients): Promise<Check> {
  const { accountId, region } = item.target;
  const scope = `${accountId}/${region}`;
  const role = roleArn(accountId, item.settings.targetRoleName, region);
  const keyArn = await clients
    .kms(region)
    .send(new DescribeKeyCommand({ KeyId: item.target.kmsKey }))
    .then((out) => out.KeyMetadata?.Arn, () => undefined);
  const results: EvaluationResult[] = [];
  try {
    for (const call of runCalls(item, keyArn)) {
      const pages = paginateSimulatePrincipalPolicy(
        { client: clients.iam(region) },
        { PolicySourceArn: role, ActionNames: call.actions, ResourceArns: call.resources, ContextEntries: call.context },
      );
      for await (const page of pages) results.push(...(page.EvaluationResults ?? []));
    }
  } catch (error) {
    const { code, message } = awsErrorDetail(error);
    const denied = code === 'AccessDenied' || code === 'AccessDeniedException';
    return {
      scope,
      check: 'role-permissions',
      verdict: 'warn',
      message: denied
        ? `not checked: ${role} may not call iam:SimulatePrincipalPolicy on itself`
        : `not checked: iam:SimulatePrincipalPolicy on ${role} failed`,
      awsError: `${code}: ${message}`,
      fix: denied ? `to have the doctor check the role's policies, allow it iam:SimulatePrincipalPolicy on ${role}` : 'run the doctor again; the run itself is unaffected',
    };
  }
  const denied = results.filter((r) => r.EvalDecision !== 'allowed');
  if (denied.length === 0) {
    return { scope, check: 'role-permissions', verdict: 'pass', message: `${role} allows the ${results.length} calls a run makes (its IAM policies; key policies checked apart)` };
  }
  return {
    scope,
    check: 'role-permissions',
    verdict: 'fail',
    message: `${role} does not allow: ${denied.map((r) => `${r.EvalActionName ?? ''} on ${r.EvalResourceName ?? '*'} (${r.EvalDecision ?? ''})`).join('; ')}`,
    fix: 'update the stack of templates/target-account.yml in this account to the release you run (it allows exactly these calls)',
  };
}
