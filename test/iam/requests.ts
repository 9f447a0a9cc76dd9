/**
 * How AWS authorizes each SDK call the functions make: one entry per `service:Command`, giving the IAM requests
 * (action, resource ARN as the Service Authorization Reference writes it, request context) that AWS evaluates,
 * including those a service makes on the caller's behalf (EBS through EC2 on KMS keys, Auto Scaling launching as
 * the caller). A call without an entry fails the policy test with its name: add its entry here.
 *
 * ARN formats (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html and the
 * pages of the other services): images and snapshots have no account; instances, launch templates, subnets and
 * volumes do. docs/iam.md lists them with their sources.
 */
import type { Tag } from '@aws-sdk/client-ec2';

export type Context = Record<string, string | string[]>;

export interface IamRequest {
  action: string;
  /** The resource ARN AWS authorizes ('*' for actions without resource-level permissions). */
  resource: string;
  /** The account that owns the resource (the caller's when left out). */
  resourceAccount?: string;
  context?: Context;
  /** Made by this AWS service on the caller's behalf (kms:ViaService is set, e.g. "ec2"). */
  via?: string;
  /** What the request is, for the failure message. */
  note?: string;
}

/** What the table needs to know of the world at the time of a call. */
export interface World {
  /** Tags of a resource by its ID (image, snapshot, instance) or name (launch template, Auto Scaling group). */
  tagsOf(id: string): Record<string, string>;
  /** The ARN of a key named by ARN, ID or alias in an account and region. */
  keyArn(ref: string, account: string, region: string): string;
  /** The key an image's snapshots are encrypted with, if any, and the image's snapshots. */
  image(id: string): { account: string; snapshotIds: string[]; kmsKeyArn?: string } | undefined;
  /** A launch template the pipeline made: its image and the tags it puts on instances. */
  launchTemplate(name: string): { imageId: string; tags: Tag[] } | undefined;
  /** The Auto Scaling service-linked role of an account. */
  autoScalingRole(account: string): string;
}

export interface RecordedCall {
  /** The function (serverless.yml key) that made it. */
  fn: string;
  service: string;
  command: string;
  account: string;
  region: string;
  input: Record<string, unknown>;
}

type Entry = (call: RecordedCall, world: World) => IamRequest[];

/** `fn` of the calls the state machine makes itself (the Distributed Map's ItemReader and ResultWriter), with its own role. */
export const STATE_MACHINE_FN = 'pipelineStateMachine';
/** The same for the janitor's state machine (its cleanup Distributed Map), with the janitor machine's role. */
export const JANITOR_STATE_MACHINE_FN = 'janitorStateMachine';

const image = (region: string, id: string) => `arn:aws:ec2:${region}::image/${id}`;
const snapshot = (region: string, id: string) => `arn:aws:ec2:${region}::snapshot/${id}`;
const ec2Arn = (c: RecordedCall, type: string, id: string) => `arn:aws:ec2:${c.region}:${c.account}:${type}/${id}`;
const asgArn = (c: RecordedCall, name: string) => `arn:aws:autoscaling:${c.region}:${c.account}:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/${name}`;
const wildcard = (action: string): Entry => () => [{ action, resource: '*' }];

/** The organization the policy test reads OUs of: its management account and ID (test/iam/record.ts sets it up). */
export const ORG_MANAGEMENT = '111122223333';
export const ORG_ID = 'o-abcdefghij';
/** A root or OU ARN (Service Authorization Reference, AWS Organizations: root/o-id/r-id, ou/o-id/ou-id, in the management account). */
const parentArn = (id: string) => `arn:aws:organizations::${ORG_MANAGEMENT}:${id.startsWith('r-') ? 'root' : 'ou'}/${ORG_ID}/${id}`;
const listParent = (action: string): Entry => (c) => [{ action, resource: parentArn(String(c.input.ParentId)), resourceAccount: ORG_MANAGEMENT }];

/** aws:RequestTag/… and aws:TagKeys of the tags a create call puts on a resource type. */
function requestTags(tags: Tag[] | undefined): Context {
  const context: Context = { 'aws:TagKeys': (tags ?? []).map((t) => t.Key ?? '') };
  for (const t of tags ?? []) context[`aws:RequestTag/${t.Key ?? ''}`] = t.Value ?? '';
  return context;
}
function resourceTags(tags: Record<string, string>, prefix = 'aws'): Context {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [`${prefix}:ResourceTag/${k}`, v]));
}
function tagSpec(input: Record<string, unknown>, type: string): Tag[] | undefined {
  return (input.TagSpecifications as { ResourceType: string; Tags: Tag[] }[] | undefined)?.find((t) => t.ResourceType === type)?.Tags;
}

/** What EBS asks of a key through EC2 when it encrypts or re-encrypts volumes and snapshots for the caller. */
const EBS_KEY_ACTIONS = ['kms:DescribeKey', 'kms:CreateGrant', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'];
function throughEbs(keyArn: string, account: string, note: string): IamRequest[] {
  const keyAccount = /:kms:[^:]+:(\d{12}):/.exec(keyArn)?.[1] ?? account;
  return EBS_KEY_ACTIONS.map((action) => ({
    action,
    resource: keyArn,
    resourceAccount: keyAccount,
    via: 'ec2',
    note,
    context: (action === 'kms:CreateGrant' ? { 'kms:GrantIsForAWSResource': 'true' } : {}) as Context,
  }));
}

/** RunInstances as AWS authorizes it: one request per resource type, tags at creation with ec2:CreateTags. */
function runInstances(c: RecordedCall, w: World, imageId: string, tags: Tag[] | undefined, keyArn: string | undefined, launchTemplate?: string): IamRequest[] {
  const lt: Context = launchTemplate ? { 'ec2:LaunchTemplate': ec2Arn(c, 'launch-template', launchTemplate), 'ec2:IsLaunchTemplateResource': 'true' } : {};
  const created = { ...requestTags(tags), ...lt };
  const requests: IamRequest[] = [
    { action: 'ec2:RunInstances', resource: ec2Arn(c, 'instance', '*'), context: created },
    { action: 'ec2:RunInstances', resource: ec2Arn(c, 'volume', '*'), context: created },
    { action: 'ec2:RunInstances', resource: image(c.region, imageId), context: { ...resourceTags(w.tagsOf(imageId)), ...lt } },
    { action: 'ec2:RunInstances', resource: ec2Arn(c, 'subnet', 'subnet-0123456789abcdef0'), context: lt },
    { action: 'ec2:RunInstances', resource: ec2Arn(c, 'network-interface', '*'), context: lt },
    { action: 'ec2:RunInstances', resource: ec2Arn(c, 'security-group', 'sg-0123456789abcdef0'), context: lt },
  ];
  if (launchTemplate) requests.push({ action: 'ec2:RunInstances', resource: ec2Arn(c, 'launch-template', launchTemplate), context: lt });
  if (tags?.length) {
    for (const type of ['instance', 'volume']) {
      requests.push({ action: 'ec2:CreateTags', resource: ec2Arn(c, type, '*'), context: { ...requestTags(tags), 'ec2:CreateAction': 'RunInstances' } });
    }
  }
  if (keyArn) requests.push(...throughEbs(keyArn, c.account, 'the root volume, encrypted with the target key'));
  return requests;
}

/**
 * The table. Keys are `service:Command` as the SDK names them; each entry returns the requests AWS evaluates.
 * Calls inside a target account run as the target role; calls in the builder account as the function's role.
 */
export const REQUESTS: Record<string, Entry> = {
  // AWS: "No permissions are required to perform this operation."
  'sts:GetCallerIdentity': () => [],
  'sts:AssumeRole': (c) => [
    {
      action: 'sts:AssumeRole',
      resource: String(c.input.RoleArn),
      resourceAccount: /iam::(\d{12}):/.exec(String(c.input.RoleArn))?.[1] ?? '',
      context: (c.input.ExternalId ? { 'sts:ExternalId': String(c.input.ExternalId) } : {}) as Context,
    },
  ],
  'ssm:GetParameter': (c) => [{ action: 'ssm:GetParameter', resource: `arn:aws:ssm:${c.region}:${c.account}:parameter/${String(c.input.Name).replace(/^\//, '')}` }],
  'ssm:PutParameter': (c) => [{ action: 'ssm:PutParameter', resource: `arn:aws:ssm:${c.region}:${c.account}:parameter/${String(c.input.Name).replace(/^\//, '')}` }],
  'events:PutEvents': (c) => [{ action: 'events:PutEvents', resource: `arn:aws:events:${c.region}:${c.account}:event-bus/default` }],
  'sns:Publish': (c) => [{ action: 'sns:Publish', resource: String(c.input.TopicArn), resourceAccount: String(c.input.TopicArn).split(':')[4] }],
  // S3 object ARNs carry no account; the bucket is the builder account's. The local runner reading the manifest back
  // after a run stands for the CLI (`status`, the user's own credentials), not for a shipped role: nothing to evaluate.
  's3:PutObject': (c) => [{ action: 's3:PutObject', resource: `arn:aws:s3:::${String(c.input.Bucket)}/${String(c.input.Key)}` }],
  's3:GetObject': (c) =>
    c.fn === STATE_MACHINE_FN && String(c.input.Key).endsWith('/manifest.json') && !String(c.input.Key).includes('/results/')
      ? []
      : [{ action: 's3:GetObject', resource: `arn:aws:s3:::${String(c.input.Bucket)}/${String(c.input.Key)}` }],
  'iam:GetRole': (c, w) => [{ action: 'iam:GetRole', resource: w.autoScalingRole(c.account) }],
  'organizations:ListAccountsForParent': listParent('organizations:ListAccountsForParent'),
  'organizations:ListOrganizationalUnitsForParent': listParent('organizations:ListOrganizationalUnitsForParent'),

  'ec2:DescribeImages': wildcard('ec2:DescribeImages'),
  'ec2:DescribeSnapshots': wildcard('ec2:DescribeSnapshots'),
  'ec2:DescribeSubnets': wildcard('ec2:DescribeSubnets'),
  'ec2:GetEbsEncryptionByDefault': wildcard('ec2:GetEbsEncryptionByDefault'),
  'ec2:GetEbsDefaultKmsKeyId': wildcard('ec2:GetEbsDefaultKmsKeyId'),
  'ec2:DescribeInstances': wildcard('ec2:DescribeInstances'),
  'ec2:DescribeVolumes': wildcard('ec2:DescribeVolumes'),
  'ec2:DescribeImageReferences': wildcard('ec2:DescribeImageReferences'),
  'ec2:GetAllowedImagesSettings': wildcard('ec2:GetAllowedImagesSettings'),
  // No resource type; the condition key rbin:Request/ResourceType (Service Authorization Reference, Amazon Recycle Bin).
  'rbin:ListRules': (c) => [{ action: 'rbin:ListRules', resource: '*', context: { 'rbin:Request/ResourceType': String(c.input.ResourceType) } }],
  'ec2:DescribeLaunchTemplateVersions': wildcard('ec2:DescribeLaunchTemplateVersions'),
  'autoscaling:DescribeAutoScalingGroups': wildcard('autoscaling:DescribeAutoScalingGroups'),
  'autoscaling:DescribeScalingActivities': wildcard('autoscaling:DescribeScalingActivities'),
  'ec2:DescribeImageAttribute': (c) => [{ action: 'ec2:DescribeImageAttribute', resource: image(c.region, String(c.input.ImageId)) }],
  'ec2:DescribeSnapshotAttribute': (c) => [{ action: 'ec2:DescribeSnapshotAttribute', resource: snapshot(c.region, String(c.input.SnapshotId)) }],
  'ec2:ModifyImageAttribute': (c) => [{ action: 'ec2:ModifyImageAttribute', resource: image(c.region, String(c.input.ImageId)) }],
  'ec2:ModifySnapshotAttribute': (c) => [{ action: 'ec2:ModifySnapshotAttribute', resource: snapshot(c.region, String(c.input.SnapshotId)) }],

  'ec2:CopyImage': (c, w) => {
    const source = w.image(String(c.input.SourceImageId));
    const requests: IamRequest[] = [
      { action: 'ec2:CopyImage', resource: image(c.region, '*'), context: requestTags(tagSpec(c.input, 'image')) },
      { action: 'ec2:CopyImage', resource: snapshot(c.region, '*'), context: requestTags(tagSpec(c.input, 'snapshot')) },
    ];
    for (const type of ['image', 'snapshot']) {
      const tags = tagSpec(c.input, type);
      if (tags?.length) {
        const arn = type === 'image' ? image(c.region, '*') : snapshot(c.region, '*');
        requests.push({ action: 'ec2:CreateTags', resource: arn, context: { ...requestTags(tags), 'ec2:CreateAction': 'CopyImage' } });
      }
    }
    requests.push(...throughEbs(w.keyArn(String(c.input.KmsKeyId), c.account, c.region), c.account, 'the copy, encrypted with the target key'));
    if (source?.kmsKeyArn) requests.push(...throughEbs(source.kmsKeyArn, c.account, "the source's snapshots, encrypted with the builder's key"));
    return requests;
  },
  'ec2:CreateTags': (c, w) =>
    (c.input.Resources as string[]).map((id) => ({
      action: 'ec2:CreateTags',
      resource: id.startsWith('ami-') ? image(c.region, id) : id.startsWith('snap-') ? snapshot(c.region, id) : ec2Arn(c, id.startsWith('i-') ? 'instance' : 'volume', id),
      context: { ...requestTags(c.input.Tags as Tag[]), ...resourceTags(w.tagsOf(id)) },
    })),
  // The share ledger's entries come off the source image and snapshots (docs/share-ledger.md).
  'ec2:DeleteTags': (c, w) =>
    (c.input.Resources as string[]).map((id) => ({
      action: 'ec2:DeleteTags',
      resource: id.startsWith('ami-') ? image(c.region, id) : snapshot(c.region, id),
      context: { 'aws:TagKeys': (c.input.Tags as Tag[]).map((t) => t.Key ?? ''), ...resourceTags(w.tagsOf(id)) },
    })),
  // Is the run that shared the source still running? (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)
  'states:DescribeExecution': (c) => [{ action: 'states:DescribeExecution', resource: String(c.input.executionArn) }],
  // The janitor reads a stopped run's history (ResolveSource's output) from the same execution ARN.
  'states:GetExecutionHistory': (c) => [{ action: 'states:GetExecutionHistory', resource: String(c.input.executionArn) }],
  // The Distributed Map starting a child: an execution of the parent's own state machine (recorded by record.ts).
  'states:StartExecution': (c) => [{ action: 'states:StartExecution', resource: String(c.input.stateMachineArn) }],
  // With DeleteAssociatedSnapshots, EC2 deletes each snapshot as the caller: ec2:DeleteSnapshot on it too (a
  // missing permission is the DeleteSnapshotResults code missing-permissions, API reference).
  'ec2:DeregisterImage': (c, w) => {
    const id = String(c.input.ImageId);
    const snapshots = c.input.DeleteAssociatedSnapshots === true ? (w.image(id)?.snapshotIds ?? []) : [];
    return [
      { action: 'ec2:DeregisterImage', resource: image(c.region, id), context: resourceTags(w.tagsOf(id)) },
      ...snapshots.map((s) => ({ action: 'ec2:DeleteSnapshot', resource: snapshot(c.region, s), context: resourceTags(w.tagsOf(s)) })),
    ];
  },
  ...Object.fromEntries(
    ['EnableImageDeprecation', 'EnableImageDeregistrationProtection', 'DisableImageDeregistrationProtection', 'DisableImage', 'EnableImage'].map((action) => [
      `ec2:${action}`,
      (c: RecordedCall, w: World): IamRequest[] => [
        { action: `ec2:${action}`, resource: image(c.region, String(c.input.ImageId)), context: resourceTags(w.tagsOf(String(c.input.ImageId))) },
      ],
    ]),
  ),
  'ec2:DeleteSnapshot': (c, w) => [
    { action: 'ec2:DeleteSnapshot', resource: snapshot(c.region, String(c.input.SnapshotId)), context: resourceTags(w.tagsOf(String(c.input.SnapshotId))) },
  ],
  'ec2:CreateLaunchTemplateVersion': (c, w) => [
    { action: 'ec2:CreateLaunchTemplateVersion', resource: ec2Arn(c, 'launch-template', String(c.input.LaunchTemplateName ?? c.input.LaunchTemplateId)), context: resourceTags(w.tagsOf(String(c.input.LaunchTemplateName))) },
  ],
  'ec2:ModifyLaunchTemplate': (c, w) => [
    { action: 'ec2:ModifyLaunchTemplate', resource: ec2Arn(c, 'launch-template', String(c.input.LaunchTemplateName ?? c.input.LaunchTemplateId)), context: resourceTags(w.tagsOf(String(c.input.LaunchTemplateName))) },
  ],
  'ec2:CreateLaunchTemplate': (c) => {
    const tags = tagSpec(c.input, 'launch-template');
    return [
      { action: 'ec2:CreateLaunchTemplate', resource: ec2Arn(c, 'launch-template', '*'), context: requestTags(tags) },
      { action: 'ec2:CreateTags', resource: ec2Arn(c, 'launch-template', '*'), context: { ...requestTags(tags), 'ec2:CreateAction': 'CreateLaunchTemplate' } },
    ];
  },
  'ec2:DescribeLaunchTemplates': wildcard('ec2:DescribeLaunchTemplates'),
  'ec2:DeleteLaunchTemplate': (c, w) => [
    { action: 'ec2:DeleteLaunchTemplate', resource: ec2Arn(c, 'launch-template', String(c.input.LaunchTemplateName)), context: resourceTags(w.tagsOf(String(c.input.LaunchTemplateName))) },
  ],
  'ec2:RunInstances': (c, w) => {
    const mapping = (c.input.BlockDeviceMappings as { Ebs?: { KmsKeyId?: string } }[] | undefined)?.[0]?.Ebs;
    return runInstances(c, w, String(c.input.ImageId), tagSpec(c.input, 'instance'), mapping?.KmsKeyId);
  },
  'ec2:TerminateInstances': (c, w) =>
    (c.input.InstanceIds as string[]).map((id) => ({ action: 'ec2:TerminateInstances', resource: ec2Arn(c, 'instance', id), context: resourceTags(w.tagsOf(id)) })),

  // Auto Scaling launches the group's instances as the caller: ec2:RunInstances (and ec2:CreateTags for the
  // template's tags) on the launch template (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html).
  // The instances' volumes use the key through the grant to Auto Scaling's service-linked role, not the caller.
  'autoscaling:CreateAutoScalingGroup': (c, w) => {
    const name = String(c.input.AutoScalingGroupName);
    const lt = (c.input.LaunchTemplate as { LaunchTemplateName: string }).LaunchTemplateName;
    const tags = c.input.Tags as Tag[] | undefined;
    const template = w.launchTemplate(lt);
    if (!template) throw new Error(`CreateAutoScalingGroup ${name}: launch template ${lt} unknown to the recording`);
    return [
      { action: 'autoscaling:CreateAutoScalingGroup', resource: asgArn(c, name), context: requestTags(tags) },
      ...runInstances(c, w, template.imageId, template.tags, undefined, lt),
    ];
  },
  'autoscaling:DeleteAutoScalingGroup': (c, w) => [
    {
      action: 'autoscaling:DeleteAutoScalingGroup',
      resource: asgArn(c, String(c.input.AutoScalingGroupName)),
      context: { ...resourceTags(w.tagsOf(String(c.input.AutoScalingGroupName))), ...resourceTags(w.tagsOf(String(c.input.AutoScalingGroupName)), 'autoscaling'), 'autoscaling:ForceDelete': String(Boolean(c.input.ForceDelete)) },
    },
  ],

  'kms:DescribeKey': (c, w) => [{ action: 'kms:DescribeKey', resource: w.keyArn(String(c.input.KeyId), c.account, c.region) }],
  'kms:GetKeyPolicy': (c, w) => [{ action: 'kms:GetKeyPolicy', resource: w.keyArn(String(c.input.KeyId), c.account, c.region) }],
  'kms:ListGrants': (c, w) => [{ action: 'kms:ListGrants', resource: w.keyArn(String(c.input.KeyId), c.account, c.region) }],
  'kms:RevokeGrant': (c, w) => [{ action: 'kms:RevokeGrant', resource: w.keyArn(String(c.input.KeyId), c.account, c.region) }],
  'kms:CreateGrant': (c, w) => [
    {
      action: 'kms:CreateGrant',
      resource: w.keyArn(String(c.input.KeyId), c.account, c.region),
      context: { 'kms:GranteePrincipal': String(c.input.GranteePrincipal), 'kms:GrantOperations': c.input.Operations as string[], 'kms:GrantIsForAWSResource': 'false' },
    },
  ],
};
