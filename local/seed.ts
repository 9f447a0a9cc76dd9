/**
 * Prepares an AWS-compatible endpoint (moto, LocalStack) for a local run: in each target account and region it
 * deploys templates/target-account.yml through CloudFormation, as a target account does on AWS (the key, its
 * alias and policy, and in the first region the role), and finds the builder account's base image by name.
 * Idempotent: a second seed finds the stacks the first made.
 */
import { readFileSync } from 'node:fs';
import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetKeyPolicyCommand, KMSClient, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { regionPairs } from '../functions/shared/plan';

export interface SeedTarget {
  accountId: string;
  regions: string[];
}

export interface SeedOptions {
  endpointUrl: string;
  sourceRegion: string;
  /** Name of the builder account's base image to distribute. */
  sourceImageName: string;
  targets: SeedTarget[];
  keyAlias?: string;
  targetRoleName?: string;
}

export interface Seeded {
  sourceImageId: string;
  /** Key ARN by "account/region". */
  keys: Record<string, string>;
}

export const TARGET_TEMPLATE = new URL('../templates/target-account.yml', import.meta.url);
/** One stack per key alias (a rekey's new key is a second stack); the first one in an account makes the role. */
export function targetStackName(alias: string): string {
  const name = alias.replace(/^alias\//, '');
  return name === 'ami-encryption' ? 'ami-pipeline-target' : `ami-pipeline-target-${name.replace(/[^a-zA-Z0-9-]/g, '-')}`.slice(0, 128);
}
/** The role an administrator deploys a target account's stack with (AWS Organizations' default for new accounts). */
const ADMIN_ROLE = 'OrganizationAccountAccessRole';

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

async function adminCredentials(accountId: string, region: string): Promise<Credentials> {
  const out = await new STSClient({ region }).send(
    new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${accountId}:role/${ADMIN_ROLE}`, RoleSessionName: 'ami-pipeline-seed' }),
  );
  const c = out.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`AssumeRole into ${accountId} returned no credentials`);
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

async function describeStack(cfn: CloudFormationClient, name: string): Promise<Stack | undefined> {
  try {
    return (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
  } catch (error) {
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) return undefined;
    throw error;
  }
}

/** Deploys (or finds) the target stack in one account and region; returns its key ARN. */
async function deployTarget(accountId: string, region: string, parameters: Record<string, string>): Promise<string> {
  const credentials = await adminCredentials(accountId, region);
  const cfn = new CloudFormationClient({ region, credentials });
  const name = targetStackName(parameters.KeyAlias ?? 'alias/ami-encryption');
  let stack = await describeStack(cfn, name);
  if (!stack) {
    // IAM is global: the role comes from one stack of the account; a stack for another key leaves it out.
    const roleExists = await new IAMClient({ region, credentials })
      .send(new GetRoleCommand({ RoleName: parameters.TargetRoleName ?? 'AmiPipelineTarget' }))
      .then(
        () => true,
        (error: unknown) => {
          if ((error as Error).name === 'NoSuchEntityException' || (error as Error).name === 'NoSuchEntity') return false;
          throw error;
        },
      );
    await cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: readFileSync(TARGET_TEMPLATE, 'utf8'),
        Capabilities: ['CAPABILITY_NAMED_IAM'],
        Parameters: Object.entries({ ...parameters, RoleRegion: roleExists ? 'none' : region }).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue })),
      }),
    );
    for (let i = 0; i < 60 && stack?.StackStatus !== 'CREATE_COMPLETE'; i += 1) {
      stack = await describeStack(cfn, name);
      if (stack?.StackStatus?.endsWith('FAILED') || stack?.StackStatus?.startsWith('ROLLBACK')) {
        throw new Error(`stack ${name} in ${accountId}/${region}: ${stack.StackStatus} ${stack.StackStatusReason ?? ''}`);
      }
      if (stack?.StackStatus !== 'CREATE_COMPLETE') await new Promise((r) => setTimeout(r, 500));
    }
  }
  const keyArn = stack?.Outputs?.find((o) => o.OutputKey === 'KeyArn')?.OutputValue;
  if (!keyArn) throw new Error(`stack ${name} in ${accountId}/${region} has no KeyArn output (${stack?.StackStatus ?? 'not found'})`);
  // moto keeps a CloudFormation-made key policy as an object and answers GetKeyPolicy with it, where AWS answers
  // a JSON string: write it back as the string AWS would hold.
  const kms = new KMSClient({ region, credentials });
  const policy: unknown = (await kms.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }))).Policy;
  if (policy !== undefined && typeof policy !== 'string') {
    await kms.send(new PutKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default', Policy: JSON.stringify(policy) }));
  }
  return keyArn;
}

export async function seed(options: SeedOptions): Promise<Seeded> {
  const alias = options.keyAlias ?? 'alias/ami-encryption';
  const saved = process.env.AWS_ENDPOINT_URL;
  process.env.AWS_ENDPOINT_URL = options.endpointUrl;
  try {
    const builderEc2 = new EC2Client({ region: options.sourceRegion });
    const images = await builderEc2.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [options.sourceImageName] }] }),
    );
    const sourceImageId = images.Images?.[0]?.ImageId;
    if (!sourceImageId) throw new Error(`the builder account has no image named ${options.sourceImageName} in ${options.sourceRegion}`);
    const builderAccountId = (await new STSClient({ region: options.sourceRegion }).send(new GetCallerIdentityCommand({}))).Account ?? '';

    const keys: Record<string, string> = {};
    for (const { target, region } of regionPairs(options.targets)) {
      keys[`${target.accountId}/${region}`] = await deployTarget(target.accountId, region, {
        PipelineAccountId: builderAccountId,
        TargetRoleName: options.targetRoleName ?? 'AmiPipelineTarget',
        KeyAlias: alias,
      });
    }
    return { sourceImageId, keys };
  } finally {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
  }
}
