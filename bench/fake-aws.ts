/**
 * A small in-memory AWS for the benchmark and the state machine tests: EC2, KMS, Auto Scaling, STS and SSM mocked at the client class,
 * with per-account state. The calling account comes from the client's credentials (AssumeRole hands out keys
 * that name the account), the region from its config, so the real handlers run unchanged against it.
 * Knobs inject the failures the tests need; every call is logged.
 */
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CopyImageCommand,
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  CreateLaunchTemplateVersionCommand,
  DeleteLaunchTemplateCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  ModifyLaunchTemplateCommand,
  DescribeImageAttributeCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DisableImageCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageCommand,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
  GetAllowedImagesSettingsCommand,
  DescribeInstancesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
  GetEbsDefaultKmsKeyIdCommand,
  GetEbsEncryptionByDefaultCommand,
  type Filter,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RunInstancesCommand,
  type Tag,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateGrantCommand, DescribeKeyCommand, GetKeyPolicyCommand, KMSClient, ListGrantsCommand, RevokeGrantCommand } from '@aws-sdk/client-kms';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ListAccountsForParentCommand, ListOrganizationalUnitsForParentCommand, OrganizationsClient, type Account } from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { ListRulesCommand, RbinClient, type RbinResourceType, type RuleSummary } from '../functions/shared/rbin-client';

interface FakeImage {
  id: string;
  account: string;
  region: string;
  name: string;
  state: string;
  stateReason?: { Code: string; Message: string };
  snapshotId: string;
  tags: Tag[];
  launchPermission: Set<string>;
  polls: number;
  kmsKeyId?: string;
  /** What CopyImage recorded: the AMI ancestry EC2 reports (SourceImageId, SourceImageRegion). */
  sourceImageId?: string;
  sourceRegion?: string;
  deprecationTime?: string;
  /** DeregistrationProtection as DescribeImages reports it (default "disabled"). */
  protection?: string;
  /** Order of creation: CreationDate grows with it. */
  created?: number;
  /** With the clock hooks: when the copy started and when it is done (ms on its account and region's clock). */
  startedAt?: number;
  readyAt?: number;
}
interface FakeInstance {
  id: string;
  imageId?: string;
  account: string;
  region: string;
  state: string;
  volumeId: string;
  tags: Tag[];
  stateReason?: { Code: string; Message: string };
  /** With the clock hooks: when it is running (ms on its account and region's clock). */
  readyAt?: number;
}
interface FakeVolume {
  id: string;
  encrypted: boolean;
  kmsKeyId?: string;
}
interface Grant {
  GrantId: string;
  Name?: string;
  GranteePrincipal?: string;
  Operations?: string[];
  KeyId: string;
}
/** The builder account of the scripted world (the account the default credentials act as). */
export const BUILDER = '999999999999';

/** An error shaped like the SDK's service exceptions: name = AWS error code, $metadata with the HTTP status. */
export function awsError(code: string, message: string, httpStatusCode = 400): Error {
  const error = new Error(message) as Error & { $metadata: { httpStatusCode: number }; $fault: string; Code: string };
  error.name = code;
  error.Code = code;
  error.$metadata = { httpStatusCode };
  error.$fault = httpStatusCode >= 500 ? 'server' : 'client';
  return error;
}

export interface CallRecord {
  service: string;
  command: string;
  account: string;
  region: string;
  input: Record<string, unknown>;
}

/**
 * Optional hooks for a scripted backend (the benchmark); none is set by default, and without them FakeAws behaves
 * as the tests expect (copies available after `copyPolls` looks, instances running at once).
 */
export interface FakeAwsHooks {
  /** Called with every call once it is recorded, before it is answered: throw to fail it (throttling, say). */
  beforeCall?: (call: CallRecord) => void;
  /** Called with every answer. */
  afterCall?: (call: CallRecord, output: unknown) => void;
  /** The clock (ms) of an account and region. With `copyMs`, copies follow it; with `launchMs`, launches do. */
  now?: (account: string, region: string) => number;
  /** How long (ms) a copy into this account and region takes: pending until then, its snapshot's Progress growing. */
  copyMs?: (account: string, region: string) => number;
  /** How long (ms) a launched instance is pending (Auto Scaling: not InService) before it runs. */
  launchMs?: number;
}

type AnyClient = { config: unknown };
type Mocked = { callsFake(fn: (input: never, getClient: () => AnyClient) => unknown): unknown };

export class FakeAws {
  readonly calls: CallRecord[] = [];
  readonly images = new Map<string, FakeImage>();
  readonly snapshotPermissions = new Map<string, Set<string>>();
  /** Tags on the builder's source snapshots, by snapshot ID. */
  readonly snapshotTags = new Map<string, Tag[]>();
  /** What DescribeExecution answers, by execution ARN; an ARN not listed does not exist. */
  readonly executions = new Map<string, string>();
  /** More of DescribeExecution's answer (state machine, name, error, cause), and GetExecutionHistory's events, by execution ARN. */
  readonly executionDetails = new Map<string, Record<string, unknown>>();
  readonly histories = new Map<string, HistoryEvent[]>();
  readonly keys = new Map<string, { account: string; region: string; arn: string; state: string; manager: string; aliases: string[] }>();
  readonly grants: Grant[] = [];
  readonly instances = new Map<string, FakeInstance>();
  readonly volumes = new Map<string, FakeVolume>();
  readonly groups = new Map<string, { account: string; region: string; name: string; instanceIds: string[]; failure?: string }>();
  readonly templates = new Map<string, { mapping: { KmsKeyId?: string; Encrypted?: boolean }; imageId: string; tags: Tag[] }>();
  /** SSM parameters of the builder account (targets documents), by name. */
  readonly parameters = new Map<string, string>();
  /** SSM parameters written in other accounts, by "account/region/name". */
  readonly targetParameters = new Map<string, { value: string; version: number; dataType?: string }>();
  /** Launch templates users own (not the launch check's), by "account/region/name". */
  readonly userTemplates = new Map<string, { id: string; versions: { number: number; imageId: string }[]; defaultVersion: number }>();
  readonly deletedSnapshots: string[] = [];
  readonly events: { Source?: string; DetailType?: string; Detail?: string }[] = [];
  readonly notifications: { TopicArn?: string; Subject?: string; Message?: string }[] = [];
  /** S3 objects of the builder account (the runs bucket), by "bucket/key". */
  readonly objects = new Map<string, string>();

  /** Status checks a copy stays pending before it is available. */
  copyPolls = 1;
  /** "account/region" whose copies end `failed`. */
  readonly failingCopies = new Set<string>();
  /** "account/region" whose launches fail with this scaling-activity message. */
  readonly failingLaunches = new Map<string, string>();
  /** "account/region" whose Auto Scaling groups never bring an instance InService (and report no failure). */
  readonly stuckLaunches = new Set<string>();
  /** Snapshots (by ID) encrypted with a key (by ARN); the others read unencrypted. */
  readonly encryptedSnapshots = new Map<string, string>();
  /** Key policies (JSON) by key ARN; keys not listed have the default policy (the account's root, kms:*). */
  readonly keyPolicies = new Map<string, string>();
  /** What GetEbsEncryptionByDefault answers in every account. */
  ebsEncryptionByDefault = false;
  /** Accounts whose role cannot be assumed. */
  readonly unassumable = new Set<string>();
  /** Accounts whose role appears only after this many refused AssumeRole calls (a StackSet still deploying it). */
  readonly roleDeployedAfter = new Map<string, number>();
  /** The organization, as the builder account (a delegated administrator) reads it: accounts and child OUs per parent ID. */
  readonly organization = new Map<string, { accounts: Account[]; ous: string[] }>();
  /** Recycle Bin retention rules (rbin ListRules); none by default, as in a new account. */
  readonly recycleBinRules: { account: string; region: string; resourceType: RbinResourceType; rule: RuleSummary }[] = [];
  /** Commands that fail once with RequestLimitExceeded, then work. */
  readonly throttleOnce = new Set<string>();
  /** Optional hooks (see FakeAwsHooks); empty by default. */
  hooks: FakeAwsHooks = {};

  private seq = 0;
  private readonly mocks = [mockClient(EC2Client), mockClient(KMSClient), mockClient(AutoScalingClient), mockClient(STSClient), mockClient(SSMClient), mockClient(IAMClient), mockClient(EventBridgeClient), mockClient(SNSClient), mockClient(SFNClient), mockClient(OrganizationsClient), mockClient(RbinClient), mockClient(S3Client)];

  /**
   * `singleDispatch` (off by default): one fake per client that picks the handler by the command's class, instead
   * of one sinon `withArgs` per command, which sinon matches (deep-equal) against every call; the same answers,
   * for runs of millions of calls (the benchmark), where that matching took a third of the time.
   */
  constructor(private readonly options: { singleDispatch?: boolean } = {}) {
    this.install();
  }

  restore(): void {
    for (const m of this.mocks) m.restore();
  }

  /**
   * Forget the mocks' own record of calls (sinon keeps every command and returned promise): long runs (the
   * benchmark) call this now and then to stay in memory. `calls` is kept.
   */
  forgetMockHistory(): void {
    for (const m of this.mocks) m.resetHistory();
  }

  private id(prefix: string): string {
    this.seq += 1;
    return `${prefix}-${this.seq.toString(16).padStart(17, '0')}`;
  }

  addSourceImage(region: string, name = 'base-image'): string {
    const id = this.id('ami');
    this.images.set(id, {
      id, account: BUILDER, region, name, state: 'available', snapshotId: this.id('snap'), tags: [], launchPermission: new Set(), polls: 0,
    });
    return id;
  }

  addKey(account: string, region: string, alias = 'alias/ami-encryption'): string {
    const keyId = `${this.seq.toString().padStart(8, '0')}-1111-2222-3333-444444444444`;
    this.seq += 1;
    const arn = `arn:aws:kms:${region}:${account}:key/${keyId}`;
    this.keys.set(arn, { account, region, arn, state: 'Enabled', manager: 'CUSTOMER', aliases: [alias] });
    return arn;
  }

  /** A launch template a user owns in an account and region, its one version on `imageId`. */
  addUserTemplate(account: string, region: string, name: string, imageId: string): void {
    this.userTemplates.set(`${account}/${region}/${name}`, { id: this.id('lt'), versions: [{ number: 1, imageId }], defaultVersion: 1 });
  }

  callsTo(command: string): CallRecord[] {
    return this.calls.filter((c) => c.command === command);
  }

  private install(): void {
    const [ec2, kms, asg, sts, ssm, iam, events, sns, sfn, organizations, rbin, s3] = this.mocks;
    type Fake = (input: never, getClient: () => AnyClient) => Promise<unknown>;
    const dispatch = new Map<unknown, Map<unknown, Fake>>();
    const register = (mock: unknown, command: unknown, fake: Fake) => {
      if (!this.options.singleDispatch) {
        (mock as { on(c: unknown): Mocked }).on(command).callsFake(fake);
        return;
      }
      let fakes = dispatch.get(mock);
      if (!fakes) {
        const byCommand = new Map<unknown, Fake>();
        fakes = byCommand;
        dispatch.set(mock, byCommand);
        (mock as { send: { callsFake(fn: (this: AnyClient, command: { input: never }) => unknown): unknown } }).send.callsFake(function (command) {
          return byCommand.get(command.constructor)?.(command.input, () => this);
        });
      }
      fakes.set(command, fake);
    };
    const on = <T>(mock: unknown, command: new (input: never) => T, service: string, fn: (input: Record<string, unknown>, who: { account: string; region: string }) => unknown) => {
      const name = command.name.replace(/Command$/, '');
      register(mock, command, async (input: never, getClient: () => AnyClient) => {
        const config = getClient().config as unknown as { credentials: () => Promise<{ accessKeyId: string }>; region: () => Promise<string> };
        const creds = await config.credentials();
        const account = creds.accessKeyId.startsWith('ASIA') ? creds.accessKeyId.slice(4) : BUILDER;
        const region = await config.region();
        const call: CallRecord = { service, command: name, account, region, input };
        this.calls.push(call);
        this.hooks.beforeCall?.(call);
        if (this.throttleOnce.delete(name)) throw awsError(service === 'kms' ? 'ThrottlingException' : 'RequestLimitExceeded', 'Request limit exceeded.', 503);
        const output = await fn(input as Record<string, unknown>, { account, region });
        this.hooks.afterCall?.(call, output);
        return output;
      });
    };
    const clock = (account: string, region: string) => this.hooks.now?.(account, region) ?? 0;
    // A copy on the clock: pending until its readyAt, then available (or failed).
    const timed = (i: FakeImage) => {
      if (i.readyAt === undefined || i.state !== 'pending' || clock(i.account, i.region) < i.readyAt) return i;
      if (this.failingCopies.has(`${i.account}/${i.region}`)) {
        i.state = 'failed';
        i.stateReason = { Code: 'Client.InvalidKMSKey.InvalidState', Message: 'The KMS key provided is in an incorrect state' };
      } else i.state = 'available';
      return i;
    };
    const running = (i: FakeInstance) => {
      if (i.readyAt !== undefined && i.state === 'pending' && clock(i.account, i.region) >= i.readyAt) i.state = 'running';
      return i;
    };
    const clockedSnapshots = new Map<string, FakeImage>();
    const filterMatch = (image: FakeImage, filters: Filter[] = []) =>
      filters.every((f) => {
        if (f.Name === 'state') return f.Values?.includes(image.state);
        if (f.Name === 'name') return f.Values?.some((v) => new RegExp(`^${v.replace(/\*/g, '.*')}$`).test(image.name));
        if (f.Name?.startsWith('tag:')) return image.tags.some((t) => t.Key === f.Name?.slice(4) && f.Values?.includes(t.Value ?? ''));
        return true;
      });
    const describeImage = (i: FakeImage) => ({
      ImageId: i.id, OwnerId: i.account, Name: i.name, State: i.state, StateReason: i.stateReason, RootDeviceType: 'ebs',
      RootDeviceName: '/dev/xvda', Architecture: 'x86_64', CreationDate: new Date(Date.UTC(2026, 10, 29) + (i.created ?? 0) * 60_000).toISOString(), Tags: i.tags,
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: i.snapshotId, VolumeSize: 8, Encrypted: Boolean(i.kmsKeyId), KmsKeyId: i.kmsKeyId } }],
      SourceImageId: i.sourceImageId, SourceImageRegion: i.sourceRegion, DeprecationTime: i.deprecationTime, DeregistrationProtection: i.protection ?? 'disabled',
    });

    on(sts, AssumeRoleCommand, 'sts', (input) => {
      const account = /iam::(\d{12}):/.exec(String(input.RoleArn))?.[1] ?? '';
      const refusals = this.roleDeployedAfter.get(account) ?? 0;
      if (refusals > 0) this.roleDeployedAfter.set(account, refusals - 1);
      if (this.unassumable.has(account) || refusals > 0) {
        throw awsError('AccessDenied', `User: arn:aws:sts::${BUILDER}:assumed-role/x is not authorized to perform: sts:AssumeRole on resource: ${String(input.RoleArn)}`, 403);
      }
      return { Credentials: { AccessKeyId: `ASIA${account}`, SecretAccessKey: 'secret-for-tests', SessionToken: `token-${account}`, Expiration: new Date(Date.now() + 3_600_000) } };
    });
    on(sts, GetCallerIdentityCommand, 'sts', (_i, who) => ({ Account: who.account }));
    const parent = (input: Record<string, unknown>) => {
      const found = this.organization.get(String(input.ParentId));
      if (!found) throw awsError('ParentNotFoundException', "We can't find a root or OU with the ParentId that you specified.", 400);
      return found;
    };
    on(rbin, ListRulesCommand, 'rbin', (input, who) => ({
      Rules: this.recycleBinRules.filter((r) => r.account === who.account && r.region === who.region && r.resourceType === input.ResourceType).map((r) => r.rule),
    }));
    on(organizations, ListAccountsForParentCommand, 'organizations', (input) => ({ Accounts: parent(input).accounts }));
    on(organizations, ListOrganizationalUnitsForParentCommand, 'organizations', (input) => ({
      OrganizationalUnits: parent(input).ous.map((Id) => ({ Id, Name: Id })),
    }));
    on(ssm, GetParameterCommand, 'ssm', (input, who) => {
      const own = this.targetParameters.get(`${who.account}/${who.region}/${String(input.Name)}`);
      if (own) return { Parameter: { Name: input.Name, Value: own.value, Version: own.version, DataType: own.dataType } };
      const value = who.account === BUILDER ? this.parameters.get(String(input.Name)) : undefined;
      if (value === undefined) throw awsError('ParameterNotFound', '', 400);
      return { Parameter: { Name: input.Name, Value: value } };
    });
    on(ssm, PutParameterCommand, 'ssm', (input, who) => {
      const key = `${who.account}/${who.region}/${String(input.Name)}`;
      const version = (this.targetParameters.get(key)?.version ?? 0) + 1;
      this.targetParameters.set(key, { value: String(input.Value), version, dataType: input.DataType as string | undefined });
      return { Version: version };
    });
    on(events, PutEventsCommand, 'events', (input) => {
      const entries = input.Entries as { Source?: string; DetailType?: string; Detail?: string }[];
      this.events.push(...entries);
      return { FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `event-${this.events.length + i}` })) };
    });
    on(s3, PutObjectCommand, 's3', (input) => {
      this.objects.set(`${String(input.Bucket)}/${String(input.Key)}`, String(input.Body));
      return { ETag: `"${this.objects.size}"` };
    });
    on(s3, GetObjectCommand, 's3', (input) => {
      const text = this.objects.get(`${String(input.Bucket)}/${String(input.Key)}`);
      if (text === undefined) throw awsError('NoSuchKey', 'The specified key does not exist.', 404);
      return { Body: { transformToString: async () => text } };
    });

    on(sns, PublishCommand, 'sns', (input) => {
      this.notifications.push(input as { TopicArn?: string; Subject?: string; Message?: string });
      return { MessageId: `message-${this.notifications.length}` };
    });

    on(ec2, DescribeImagesCommand, 'ec2', (input, who) => {
      const ids = input.ImageIds as string[] | undefined;
      if (ids?.length) {
        const found = ids.map((id) => this.images.get(id)).filter((i): i is FakeImage => Boolean(i && i.region === who.region && (i.account === who.account || i.launchPermission.has(who.account))));
        if (found.length === 0) throw awsError('InvalidAMIID.NotFound', `The image id '[${ids.join(',')}]' does not exist`);
        for (const i of found) {
          if (i.readyAt !== undefined) timed(i);
          else if (i.account !== BUILDER && i.state === 'pending') {
            i.polls += 1;
            if (i.polls > this.copyPolls) {
              if (this.failingCopies.has(`${i.account}/${i.region}`)) {
                i.state = 'failed';
                i.stateReason = { Code: 'Client.InvalidKMSKey.InvalidState', Message: 'The KMS key provided is in an incorrect state' };
              } else i.state = 'available';
            }
          }
        }
        return { Images: found.map(describeImage) };
      }
      const images = [...this.images.values()].filter(
        (i) => i.account === who.account && i.region === who.region && (input.IncludeDisabled === true || i.state !== 'disabled') && filterMatch(timed(i), input.Filters as Filter[]),
      );
      return { Images: images.map(describeImage) };
    });
    on(ec2, DescribeSnapshotsCommand, 'ec2', (input) => ({
      // Listing by tag (retention's sweep): this fake lists snapshots by ID only, so a sweep finds none.
      Snapshots: ((input.SnapshotIds as string[] | undefined) ?? []).map((id) => {
        const snapshot = { SnapshotId: id, Encrypted: this.encryptedSnapshots.has(id), KmsKeyId: this.encryptedSnapshots.get(id), Tags: this.snapshotTags.get(id) ?? [] };
        const copy = clockedSnapshots.get(id);
        if (!copy || copy.readyAt === undefined || copy.startedAt === undefined) return snapshot;
        // AWS reports whole percentages.
        const done = timed(copy).state !== 'pending';
        const fraction = (clock(copy.account, copy.region) - copy.startedAt) / Math.max(1, copy.readyAt - copy.startedAt);
        const percent = done ? 100 : Math.min(99, Math.max(0, Math.floor(100 * fraction)));
        return { ...snapshot, State: done ? 'completed' : 'pending', Progress: `${percent}%` };
      }),
    }));
    on(ec2, DescribeImageAttributeCommand, 'ec2', (input) => ({
      LaunchPermissions: [...(this.images.get(String(input.ImageId))?.launchPermission ?? [])].map((UserId) => ({ UserId })),
    }));
    on(ec2, DescribeSnapshotAttributeCommand, 'ec2', (input) => ({
      CreateVolumePermissions: [...(this.snapshotPermissions.get(String(input.SnapshotId)) ?? [])].map((UserId) => ({ UserId })),
    }));
    on(ec2, ModifyImageAttributeCommand, 'ec2', (input) => {
      const image = this.images.get(String(input.ImageId));
      if (!image) throw awsError('InvalidAMIID.NotFound', `The image id '[${String(input.ImageId)}]' does not exist`);
      const lp = input.LaunchPermission as { Add?: { UserId: string }[]; Remove?: { UserId: string }[] };
      for (const p of lp.Add ?? []) image.launchPermission.add(p.UserId);
      for (const p of lp.Remove ?? []) image.launchPermission.delete(p.UserId);
      return {};
    });
    on(ec2, ModifySnapshotAttributeCommand, 'ec2', (input) => {
      const id = String(input.SnapshotId);
      const set = this.snapshotPermissions.get(id) ?? new Set<string>();
      const cvp = input.CreateVolumePermission as { Add?: { UserId: string }[]; Remove?: { UserId: string }[] };
      for (const p of cvp.Add ?? []) set.add(p.UserId);
      for (const p of cvp.Remove ?? []) set.delete(p.UserId);
      this.snapshotPermissions.set(id, set);
      return {};
    });
    on(ec2, CopyImageCommand, 'ec2', (input, who) => {
      const sourceImage = this.images.get(String(input.SourceImageId));
      if (!sourceImage || (sourceImage.account !== who.account && !sourceImage.launchPermission.has(who.account))) {
        throw awsError('InvalidAMIID.NotFound', `The image id '[${String(input.SourceImageId)}]' does not exist`);
      }
      const id = this.id('ami');
      const tags = ((input.TagSpecifications as { ResourceType: string; Tags: Tag[] }[] | undefined) ?? []).find((t) => t.ResourceType === 'image')?.Tags ?? [];
      const image: FakeImage = {
        id, account: who.account, region: who.region, name: String(input.Name), state: 'pending', snapshotId: this.id('snap'),
        tags: [...tags], launchPermission: new Set(), polls: 0, kmsKeyId: String(input.KmsKeyId), created: this.seq,
        sourceImageId: String(input.SourceImageId), sourceRegion: String(input.SourceRegion),
      };
      if (this.hooks.now && this.hooks.copyMs) {
        image.startedAt = clock(who.account, who.region);
        image.readyAt = image.startedAt + this.hooks.copyMs(who.account, who.region);
        clockedSnapshots.set(image.snapshotId, image);
      }
      this.images.set(id, image);
      return { ImageId: id };
    });
    on(ec2, CreateTagsCommand, 'ec2', (input) => {
      for (const id of input.Resources as string[]) {
        const image = this.images.get(id);
        if (!image) {
          if (id.startsWith('snap-')) {
            const tags = (this.snapshotTags.get(id) ?? []).filter((x) => !(input.Tags as Tag[]).some((t) => t.Key === x.Key));
            this.snapshotTags.set(id, [...tags, ...(input.Tags as Tag[])]);
          }
          continue;
        }
        for (const t of input.Tags as Tag[]) {
          image.tags = image.tags.filter((x) => x.Key !== t.Key);
          image.tags.push(t);
        }
      }
      return {};
    });
    on(ec2, DeleteTagsCommand, 'ec2', (input) => {
      const keys = new Set((input.Tags as { Key: string }[]).map((t) => t.Key));
      for (const id of input.Resources as string[]) {
        const image = this.images.get(id);
        if (image) image.tags = image.tags.filter((t) => !keys.has(t.Key ?? ''));
        else if (this.snapshotTags.has(id)) this.snapshotTags.set(id, (this.snapshotTags.get(id) ?? []).filter((t) => !keys.has(t.Key ?? '')));
      }
      return {};
    });
    on(sfn, DescribeExecutionCommand, 'states', (input) => {
      const status = this.executions.get(String(input.executionArn));
      if (!status) throw awsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(input.executionArn)}'`, 400);
      return { ...this.executionDetails.get(String(input.executionArn)), executionArn: input.executionArn, status };
    });
    on(sfn, GetExecutionHistoryCommand, 'states', (input) => {
      const events = this.histories.get(String(input.executionArn));
      if (!events) throw awsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(input.executionArn)}'`, 400);
      const size = Number(input.maxResults ?? 100) || 100;
      const from = Number(input.nextToken ?? 0);
      const page = events.slice(from, from + size);
      return { events: page, ...(from + size < events.length ? { nextToken: String(from + size) } : {}) };
    });
    on(ec2, DeregisterImageCommand, 'ec2', (input) => {
      const image = this.images.get(String(input.ImageId));
      if (image && (image.protection ?? 'disabled') !== 'disabled') {
        throw awsError('OperationNotPermitted', `The image ${image.id} has deregistration protection enabled.`);
      }
      if (image) image.state = 'deregistered';
      if (!image || input.DeleteAssociatedSnapshots !== true) return { Return: true };
      this.deletedSnapshots.push(image.snapshotId);
      return { Return: true, DeleteSnapshotResults: [{ SnapshotId: image.snapshotId, ReturnCode: 'success' }] };
    });
    const owned = (input: Record<string, unknown>, who: { account: string }) => {
      const image = this.images.get(String(input.ImageId));
      if (!image) throw awsError('InvalidAMIID.NotFound', `The image id '[${String(input.ImageId)}]' does not exist`);
      if (image.account !== who.account) throw awsError('AuthFailure', `Not authorized for image:${image.id}`);
      return image;
    };
    // An account's default (GetAllowedImagesSettings, API reference).
    on(ec2, GetAllowedImagesSettingsCommand, 'ec2', () => ({ State: 'disabled', ImageCriteria: [], ManagedBy: 'account' }));
    on(ec2, EnableImageDeprecationCommand, 'ec2', (input, who) => {
      owned(input, who).deprecationTime = (input.DeprecateAt as Date).toISOString();
      return { Return: true };
    });
    on(ec2, DisableImageCommand, 'ec2', (input, who) => {
      owned(input, who).state = 'disabled';
      return { Return: true };
    });
    on(ec2, EnableImageCommand, 'ec2', (input, who) => {
      owned(input, who).state = 'available';
      return { Return: true };
    });
    on(ec2, EnableImageDeregistrationProtectionCommand, 'ec2', (input, who) => {
      owned(input, who).protection = input.WithCooldown === true ? 'enabled-with-cooldown' : 'enabled';
      return { Return: input.WithCooldown === true ? 'enabled-with-cooldown' : 'enabled-without-cooldown' };
    });
    on(ec2, DisableImageDeregistrationProtectionCommand, 'ec2', (input, who) => {
      const image = owned(input, who);
      image.protection = image.protection === 'enabled-with-cooldown' ? 'disabled-until 2026-12-01T00:00:00.000Z' : 'disabled';
      return { Return: image.protection };
    });
    on(ec2, DescribeImageReferencesCommand, 'ec2', (input, who) => {
      const ids = new Set(input.ImageIds as string[]);
      const refs: { ImageId: string; ResourceType: string; Arn: string }[] = [];
      for (const i of this.instances.values()) {
        if (i.account === who.account && i.region === who.region && ids.has(i.imageId ?? '') && i.state !== 'terminated') {
          refs.push({ ImageId: i.imageId ?? '', ResourceType: 'ec2:Instance', Arn: `arn:aws:ec2:${who.region}:${who.account}:instance/${i.id}` });
        }
      }
      for (const [key, t] of this.userTemplates.entries()) {
        if (!key.startsWith(`${who.account}/${who.region}/`)) continue;
        for (const imageId of new Set(t.versions.slice(-10).map((v) => v.imageId))) {
          if (ids.has(imageId)) refs.push({ ImageId: imageId, ResourceType: 'ec2:LaunchTemplate', Arn: `arn:aws:ec2:${who.region}:${who.account}:launch-template/${t.id}` });
        }
      }
      for (const [key, p] of this.targetParameters.entries()) {
        const [account, region, ...name] = key.split('/');
        if (account === who.account && region === who.region && ids.has(p.value)) {
          refs.push({ ImageId: p.value, ResourceType: 'ssm:Parameter', Arn: `arn:aws:ssm:${who.region}:${who.account}:parameter/${name.join('/').replace(/^\//, '')}` });
        }
      }
      return { ImageReferences: refs };
    });
    on(ec2, DescribeSubnetsCommand, 'ec2', (_i, who) => ({ Subnets: [{ SubnetId: `subnet-${who.account.slice(0, 8)}`, State: 'available' }] }));
    on(ec2, CreateLaunchTemplateCommand, 'ec2', (input) => {
      const name = String(input.LaunchTemplateName);
      if (this.templates.has(name)) throw awsError('InvalidLaunchTemplateName.AlreadyExistsException', `Launch template name already in use.`);
      const data = input.LaunchTemplateData as { ImageId: string; BlockDeviceMappings: { Ebs: { KmsKeyId?: string; Encrypted?: boolean } }[]; TagSpecifications: { Tags: Tag[] }[] };
      this.templates.set(name, { mapping: data.BlockDeviceMappings[0]?.Ebs ?? {}, imageId: data.ImageId, tags: data.TagSpecifications[0]?.Tags ?? [] });
      return { LaunchTemplate: { LaunchTemplateName: name } };
    });
    const userTemplate = (who: { account: string; region: string }, input: Record<string, unknown>) => {
      const byName = input.LaunchTemplateName ? this.userTemplates.get(`${who.account}/${who.region}/${String(input.LaunchTemplateName)}`) : undefined;
      const byId = input.LaunchTemplateId ? [...this.userTemplates.entries()].find(([k, t]) => t.id === input.LaunchTemplateId && k.startsWith(`${who.account}/${who.region}/`))?.[1] : undefined;
      const template = byName ?? byId;
      if (!template) throw awsError('InvalidLaunchTemplateName.NotFoundException', 'At least one of the launch templates specified in the request does not exist.');
      return template;
    };
    on(ec2, DescribeLaunchTemplatesCommand, 'ec2', (input, who) => {
      const names = input.LaunchTemplateNames as string[] | undefined;
      if (names?.length) {
        // By name (the launch check's own templates): AWS answers NotFound when one of them does not exist.
        const found = names.flatMap((n) => (this.templates.has(n) ? [{ LaunchTemplateName: n }] : []));
        if (found.length < names.length) throw awsError('InvalidLaunchTemplateName.NotFoundException', 'At least one of the launch templates specified in the request does not exist.');
        return { LaunchTemplates: found };
      }
      return listUserTemplates(who);
    });
    const listUserTemplates = (who: { account: string; region: string }) => ({
      LaunchTemplates: [...this.userTemplates.entries()]
        .filter(([k]) => k.startsWith(`${who.account}/${who.region}/`))
        .map(([k, t]) => ({ LaunchTemplateId: t.id, LaunchTemplateName: k.split('/').pop(), DefaultVersionNumber: t.defaultVersion, LatestVersionNumber: t.versions.length })),
    });
    on(ec2, DescribeLaunchTemplateVersionsCommand, 'ec2', (input, who) => {
      const t = userTemplate(who, input);
      const wanted = (input.Versions as string[] | undefined) ?? ['$Default'];
      const numbers = wanted.map((v) => (v === '$Default' ? t.defaultVersion : v === '$Latest' ? t.versions.length : Number(v)));
      return {
        LaunchTemplateVersions: [...new Set(numbers)].map((n) => ({
          LaunchTemplateId: t.id, VersionNumber: n, DefaultVersion: n === t.defaultVersion, LaunchTemplateData: { ImageId: t.versions[n - 1]?.imageId },
        })),
      };
    });
    on(ec2, CreateLaunchTemplateVersionCommand, 'ec2', (input, who) => {
      const t = userTemplate(who, input);
      t.versions.push({ number: t.versions.length + 1, imageId: String((input.LaunchTemplateData as { ImageId?: string }).ImageId) });
      return { LaunchTemplateVersion: { LaunchTemplateId: t.id, VersionNumber: t.versions.length } };
    });
    on(ec2, ModifyLaunchTemplateCommand, 'ec2', (input, who) => {
      const t = userTemplate(who, input);
      t.defaultVersion = Number(input.DefaultVersion);
      return { LaunchTemplate: { LaunchTemplateId: t.id, DefaultVersionNumber: t.defaultVersion } };
    });
    on(ec2, DeleteSnapshotCommand, 'ec2', (input) => {
      this.deletedSnapshots.push(String(input.SnapshotId));
      return {};
    });
    on(ec2, DeleteLaunchTemplateCommand, 'ec2', (input) => {
      if (!this.templates.delete(String(input.LaunchTemplateName))) {
        throw awsError('InvalidLaunchTemplateName.NotFoundException', 'At least one of the launch templates specified in the request does not exist.');
      }
      return {};
    });
    const launch = (who: { account: string; region: string }, mapping: { KmsKeyId?: string; Encrypted?: boolean }, tags: Tag[], imageId?: string) => {
      const volumeId = this.id('vol');
      this.volumes.set(volumeId, { id: volumeId, encrypted: Boolean(mapping.Encrypted), kmsKeyId: mapping.KmsKeyId });
      const instance: FakeInstance = { id: this.id('i'), account: who.account, region: who.region, state: 'running', volumeId, tags, imageId };
      if (this.hooks.now && this.hooks.launchMs !== undefined) {
        instance.state = 'pending';
        instance.readyAt = clock(who.account, who.region) + this.hooks.launchMs;
      }
      this.instances.set(instance.id, instance);
      return instance;
    };
    on(ec2, RunInstancesCommand, 'ec2', (input, who) => {
      const failure = this.failingLaunches.get(`${who.account}/${who.region}`);
      const mapping = (input.BlockDeviceMappings as { Ebs: { KmsKeyId?: string; Encrypted?: boolean } }[])[0]?.Ebs ?? {};
      const tags = (input.TagSpecifications as { Tags: Tag[] }[])[0]?.Tags ?? [];
      const instance = launch(who, mapping, tags, String(input.ImageId));
      if (failure) {
        instance.state = 'terminated';
        instance.stateReason = { Code: 'Client.InternalError', Message: failure };
      }
      return { Instances: [{ InstanceId: instance.id }] };
    });
    const describeInstance = (i: FakeInstance) => ({
      InstanceId: i.id, ImageId: i.imageId, State: { Name: i.state }, StateReason: i.stateReason, RootDeviceName: '/dev/xvda', Tags: i.tags,
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeId: i.volumeId } }],
    });
    on(ec2, DescribeInstancesCommand, 'ec2', (input, who) => {
      const ids = input.InstanceIds as string[] | undefined;
      let found = [...this.instances.values()].filter((i) => i.account === who.account && i.region === who.region).map(running);
      if (ids?.length) found = found.filter((i) => ids.includes(i.id));
      for (const f of (input.Filters as Filter[] | undefined) ?? []) {
        if (f.Name === 'instance-state-name') found = found.filter((i) => f.Values?.includes(i.state));
        if (f.Name === 'image-id') found = found.filter((i) => f.Values?.includes(i.imageId ?? ''));
        if (f.Name?.startsWith('tag:')) found = found.filter((i) => i.tags.some((t) => t.Key === f.Name?.slice(4) && f.Values?.includes(t.Value ?? '')));
      }
      return { Reservations: found.length ? [{ Instances: found.map(describeInstance) }] : [] };
    });
    on(ec2, DescribeVolumesCommand, 'ec2', (input) => ({
      Volumes: (input.VolumeIds as string[]).map((id) => {
        const v = this.volumes.get(id);
        return { VolumeId: id, Encrypted: v?.encrypted ?? false, KmsKeyId: v?.kmsKeyId };
      }),
    }));
    on(ec2, TerminateInstancesCommand, 'ec2', (input) => {
      for (const id of input.InstanceIds as string[]) {
        const i = this.instances.get(id);
        if (i) i.state = 'terminated';
      }
      return {};
    });

    on(kms, DescribeKeyCommand, 'kms', (input, who) => {
      const ref = String(input.KeyId);
      // KeyId: a key ID or ARN, an alias name, or an alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME).
      const key = [...this.keys.values()].find(
        (k) => k.account === who.account && k.region === who.region && (k.arn === ref || k.aliases.includes(ref) || k.aliases.some((a) => ref === `arn:aws:kms:${k.region}:${k.account}:${a}`)),
      );
      if (!key) throw awsError('NotFoundException', `Alias arn:aws:kms:${who.region}:${who.account}:${ref} is not found.`);
      return { KeyMetadata: { Arn: key.arn, AWSAccountId: key.account, KeyState: key.state, KeyManager: key.manager, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' } };
    });
    // The default key policy: the account's root, so IAM decides.
    on(kms, GetKeyPolicyCommand, 'kms', (input, who) => ({
      Policy: this.keyPolicies.get(String(input.KeyId)) ?? JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${who.account}:root` }, Action: 'kms:*', Resource: '*' }] }),
    }));
    on(iam, GetRoleCommand, 'iam', (input, who) => ({ Role: { RoleName: input.RoleName, Arn: `arn:aws:iam::${who.account}:role/aws-service-role/autoscaling.amazonaws.com/${String(input.RoleName)}` } }));
    on(ec2, GetEbsEncryptionByDefaultCommand, 'ec2', () => ({ EbsEncryptionByDefault: this.ebsEncryptionByDefault }));
    on(ec2, GetEbsDefaultKmsKeyIdCommand, 'ec2', () => ({ KmsKeyId: 'alias/aws/ebs' }));
    on(kms, ListGrantsCommand, 'kms', (input) => ({
      Grants: this.grants.filter((g) => g.KeyId === input.KeyId && (!input.GrantId || g.GrantId === input.GrantId)),
      Truncated: false,
    }));
    on(kms, RevokeGrantCommand, 'kms', (input) => {
      const i = this.grants.findIndex((g) => g.GrantId === input.GrantId && g.KeyId === input.KeyId);
      if (i < 0) throw awsError('NotFoundException', `Grant ID ${String(input.GrantId)} not found`);
      this.grants.splice(i, 1);
      return {};
    });
    on(kms, CreateGrantCommand, 'kms', (input) => {
      const grant: Grant = { GrantId: this.id('grant'), Name: input.Name as string, GranteePrincipal: input.GranteePrincipal as string, Operations: input.Operations as string[], KeyId: String(input.KeyId) };
      this.grants.push(grant);
      return { GrantId: grant.GrantId, GrantToken: `token-${grant.GrantId}` };
    });

    on(asg, CreateAutoScalingGroupCommand, 'autoscaling', (input, who) => {
      const name = String(input.AutoScalingGroupName);
      if (this.groups.has(name)) throw awsError('AlreadyExists', `AutoScalingGroup by this name already exists - A group with the name ${name} already exists`);
      const template = this.templates.get((input.LaunchTemplate as { LaunchTemplateName: string }).LaunchTemplateName);
      const failure = this.failingLaunches.get(`${who.account}/${who.region}`);
      const group = { account: who.account, region: who.region, name, instanceIds: [] as string[], failure };
      const stuck = this.stuckLaunches.has(`${who.account}/${who.region}`);
      if (!failure && !stuck && template) group.instanceIds.push(launch(who, template.mapping, template.tags, template.imageId).id);
      this.groups.set(name, group);
      return {};
    });
    on(asg, DescribeAutoScalingGroupsCommand, 'autoscaling', (input) => {
      const names = input.AutoScalingGroupNames as string[];
      return {
        AutoScalingGroups: names.flatMap((n) => {
          const g = this.groups.get(n);
          const lifecycle = (id: string) => {
            const i = this.instances.get(id);
            return i && running(i).state === 'pending' ? 'Pending' : 'InService';
          };
          return g ? [{ AutoScalingGroupName: n, Instances: g.instanceIds.map((InstanceId) => ({ InstanceId, LifecycleState: lifecycle(InstanceId) })) }] : [];
        }),
      };
    });
    on(asg, DescribeScalingActivitiesCommand, 'autoscaling', (input) => {
      const g = this.groups.get(String(input.AutoScalingGroupName));
      return { Activities: g?.failure ? [{ StatusCode: 'Failed', StatusMessage: g.failure, Description: 'Launching a new EC2 instance. Status Reason: ' + g.failure }] : [] };
    });
    on(asg, DeleteAutoScalingGroupCommand, 'autoscaling', (input) => {
      const g = this.groups.get(String(input.AutoScalingGroupName));
      if (!g) throw awsError('ValidationError', `AutoScalingGroup name not found - AutoScalingGroup '${String(input.AutoScalingGroupName)}' not found`);
      for (const id of g.instanceIds) {
        const i = this.instances.get(id);
        if (i) i.state = 'terminated';
      }
      this.groups.delete(g.name);
      return {};
    });
  }
}
