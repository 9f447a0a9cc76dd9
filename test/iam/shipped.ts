/**
 * The IAM policies we ship, as AWS would hold them once deployed: the builder's roles from the packaged
 * CloudFormation template (`serverless package`, stage "test"), the target account's role, trust policy and key
 * policy from templates/target-account.yml rendered with its parameters, and the source key's policy as the
 * README and ResolveSource tell users to write it (functions/shared/key-policy.ts).
 */
import { loadTemplate, render, type RenderContext, type Template } from '../support/cfn';
import { PACKAGE_REGION, PACKAGE_STAGE, packagedTemplate } from '../support/package';
import { sourceKeyPolicyStatements } from '../../functions/shared/key-policy';
import { RUNS_BUCKET } from '../../bench/handlers';

export const SERVICE = 'encrypted-ami-pipeline';
export const STAGE = PACKAGE_STAGE;
export const PIPELINE_REGION = PACKAGE_REGION;
export const TARGET_ACCESS_ROLE = `${SERVICE}-${STAGE}-target-access`;

export interface PolicyDocument {
  Version?: string;
  Statement: Record<string, unknown>[];
}
export interface NamedPolicy {
  name: string;
  policy: PolicyDocument;
}
export interface ShippedRole {
  /** The logical ID in its template. */
  id: string;
  arn: string;
  trust: PolicyDocument;
  policies: NamedPolicy[];
}

type RoleProperties = { RoleName?: string; AssumeRolePolicyDocument: PolicyDocument; Policies?: { PolicyName: string; PolicyDocument: PolicyDocument }[] };

function roleOf(id: string, properties: RoleProperties, accountId: string): ShippedRole {
  return {
    id,
    arn: `arn:aws:iam::${accountId}:role/${properties.RoleName ?? id}`,
    trust: properties.AssumeRolePolicyDocument,
    policies: (properties.Policies ?? []).map((p) => ({ name: `${id}/${p.PolicyName}`, policy: p.PolicyDocument })),
  };
}

/** The builder account's roles by logical ID, and which role each function runs as (by serverless.yml key). */
export function builderRoles(accountId: string): { roles: Record<string, ShippedRole>; functionRole: Record<string, string> } {
  const template = packagedTemplate() as unknown as Template;
  const ctx: RenderContext = {
    accountId,
    region: PIPELINE_REGION,
    resource: (id, attribute) => {
      const r = template.Resources[id];
      const props = (r?.Properties ?? {}) as Record<string, unknown>;
      if (r?.Type === 'AWS::Lambda::Function') return `arn:aws:lambda:${PIPELINE_REGION}:${accountId}:function:${String(props.FunctionName)}`;
      if (r?.Type === 'AWS::StepFunctions::StateMachine') return `arn:aws:states:${PIPELINE_REGION}:${accountId}:stateMachine:${String(props.StateMachineName)}`;
      if (r?.Type === 'AWS::IAM::Role') return `arn:aws:iam::${accountId}:role/${String(props.RoleName ?? id)}`;
      // The runs bucket's generated name: the one the recorded runs use.
      if (r?.Type === 'AWS::S3::Bucket') return attribute === 'Arn' ? `arn:aws:s3:::${RUNS_BUCKET}` : RUNS_BUCKET;
      if (r?.Type === 'AWS::Logs::LogGroup') return `arn:aws:logs:${PIPELINE_REGION}:${accountId}:log-group:${String(props.LogGroupName)}:*`;
      throw new Error(`builderRoles: cannot resolve ${id}${attribute ? `.${attribute}` : ''} (${r?.Type ?? 'unknown'})`);
    },
  };
  const roles: Record<string, ShippedRole> = {};
  const functionRole: Record<string, string> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type === 'AWS::IAM::Role') roles[id] = roleOf(id, render(resource.Properties, template, ctx) as RoleProperties, accountId);
    if (resource.Type === 'AWS::Lambda::Function') {
      const name = String((resource.Properties as { FunctionName: string }).FunctionName).replace(`${SERVICE}-${STAGE}-`, '');
      functionRole[name] = ((resource.Properties as { Role: { 'Fn::GetAtt': [string, string] } }).Role['Fn::GetAtt'])[0];
    }
  }
  return { roles, functionRole };
}

const TARGET_TEMPLATE = new URL('../../templates/target-account.yml', import.meta.url);

export interface TargetDeployment {
  role: ShippedRole;
  /** The key policy of this account's key in `region`. */
  keyPolicy: (region: string) => PolicyDocument;
}

/** templates/target-account.yml as deployed in `accountId` with these parameters (the builder's stage-"test" role). */
export function targetAccount(accountId: string, builderAccountId: string, parameters: Record<string, string> = {}): TargetDeployment {
  const template = loadTemplate(TARGET_TEMPLATE);
  const params: Record<string, string> = { PipelineAccountId: builderAccountId, PipelineRoleName: TARGET_ACCESS_ROLE, ...parameters };
  const ctx = (region: string): RenderContext => ({
    accountId,
    region,
    parameters: params,
    resource: (id) => {
      throw new Error(`targetAccount: cannot resolve ${id}`);
    },
  });
  const roleProperties = template.Resources.PipelineTargetRole?.Properties;
  const keyPolicy = (template.Resources.AmiEncryptionKey?.Properties as { KeyPolicy: unknown }).KeyPolicy;
  return {
    role: roleOf('PipelineTargetRole', render(roleProperties, template, ctx(params.RoleRegion ?? 'us-east-1')) as RoleProperties, accountId),
    keyPolicy: (region) => render(keyPolicy, template, ctx(region)) as PolicyDocument,
  };
}

/** The source key's policy: the key administrators' own statement, and what the README says to add for the targets. */
export function sourceKeyPolicy(builderAccountId: string, targetAccountIds: string[]): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'KeyAdministration', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${builderAccountId}:root` }, Action: 'kms:*', Resource: '*' },
      ...sourceKeyPolicyStatements(targetAccountIds),
    ],
  };
}

/**
 * The organization's resource-based delegation policy that makes the builder account a delegated administrator for
 * reading OUs (docs/organizations.md; Organizations User Guide, "Resource-based policy examples").
 */
export function organizationDelegationPolicy(builderAccountId: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [{
      Sid: 'AmiPipelineReadsOus', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${builderAccountId}:root` },
      Action: ['organizations:ListAccountsForParent', 'organizations:ListOrganizationalUnitsForParent'], Resource: '*',
    }],
  };
}

const ORGANIZATION_TEMPLATE = new URL('../../templates/organization.yml', import.meta.url);

/** templates/organization.yml's reader role as deployed in the management account for this builder (stage "test"). */
export function organizationReader(managementAccountId: string, builderAccountId: string): ShippedRole {
  const template = loadTemplate(ORGANIZATION_TEMPLATE);
  const ctx: RenderContext = {
    accountId: managementAccountId,
    region: 'us-east-1',
    parameters: { PipelineAccountId: builderAccountId, PipelineRegion: PIPELINE_REGION, PipelineRoleName: `${SERVICE}-${STAGE}-resolve-source` },
    resource: (id) => {
      throw new Error(`organizationReader: cannot resolve ${id}`);
    },
  };
  return roleOf('OrganizationReaderRole', render(template.Resources.OrganizationReaderRole?.Properties, template, ctx) as RoleProperties, managementAccountId);
}
