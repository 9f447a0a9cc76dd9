/**
 * local/moto_ext/ami_lifecycle.py against AWS's documented behaviour, over the SDK as the pipeline calls it
 * (docs/lifecycle.md cites the API reference pages each expectation comes from). Runs in an account of its own.
 */
import {
  CopyImageCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DeregisterImageCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DisableImageCommand,
  DisableImageDeregistrationProtectionCommand,
  EC2Client,
  EnableImageCommand,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
  GetAllowedImagesSettingsCommand,
  type Image,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClientFactory, sessionNameFor, type Clients } from '../../functions/shared/clients';
import { awsCode } from '../../functions/shared/errors';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const REGION = 'eu-west-1';
const BASE = 'ami-0a11ce00000000002';

describe.skipIf(!MOTO_AVAILABLE)('the AMI life-cycle extension of moto', () => {
  motoSuite();
  let clients: Clients;
  let ec2: EC2Client;
  const accountId = uniqueAccount('81');

  beforeAll(() => {
    clients = createClientFactory(REGION).target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('moto-ext') });
    ec2 = clients.ec2(REGION);
  });

  async function copy(tags: { Key: string; Value: string }[] = []): Promise<Image> {
    const out = await ec2.send(
      new CopyImageCommand({
        SourceImageId: BASE,
        SourceRegion: REGION,
        Name: `moto-ext-${Math.random().toString(36).slice(2)}`,
        TagSpecifications: tags.length ? [{ ResourceType: 'image', Tags: tags }, { ResourceType: 'snapshot', Tags: tags }] : undefined,
      }),
    );
    return describe1(out.ImageId ?? '');
  }
  async function describe1(imageId: string): Promise<Image> {
    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: true }))).Images?.[0];
    if (!image) throw new Error(`${imageId} not found`);
    return image;
  }
  const snapshotOf = (image: Image) => image.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
  async function snapshotExists(snapshotId: string): Promise<boolean> {
    try {
      return ((await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots ?? []).length > 0;
    } catch (error) {
      if (awsCode(error) === 'InvalidSnapshot.NotFound') return false;
      throw error;
    }
  }
  async function codeOf(call: Promise<unknown>): Promise<string> {
    try {
      await call;
      return 'no error';
    } catch (error) {
      return awsCode(error);
    }
  }

  it('applies CopyImage TagSpecifications to the copy and its snapshot and records its source', async () => {
    const image = await copy([{ Key: 'team', Value: 'web' }]);
    expect(image).toMatchObject({ SourceImageId: BASE, SourceImageRegion: REGION, Tags: [{ Key: 'team', Value: 'web' }] });
    const snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotOf(image)] }))).Snapshots?.[0];
    expect(snapshot?.Tags).toEqual([{ Key: 'team', Value: 'web' }]);
  });

  it('deletes the snapshots with DeleteAssociatedSnapshots and reports each, and keeps them without it', async () => {
    const atomic = await copy();
    const out = await ec2.send(new DeregisterImageCommand({ ImageId: atomic.ImageId, DeleteAssociatedSnapshots: true }));
    expect(out.Return).toBe(true);
    expect(out.DeleteSnapshotResults).toEqual([{ SnapshotId: snapshotOf(atomic), ReturnCode: 'success' }]);
    expect(await snapshotExists(snapshotOf(atomic))).toBe(false);
    expect(await codeOf(ec2.send(new DeregisterImageCommand({ ImageId: atomic.ImageId })))).toBe('InvalidAMIID.Unavailable');

    const plain = await copy();
    const kept = await ec2.send(new DeregisterImageCommand({ ImageId: plain.ImageId }));
    expect(kept.DeleteSnapshotResults ?? []).toEqual([]);
    expect(await snapshotExists(snapshotOf(plain))).toBe(true);
  });

  it('leaves a disabled image out of DescribeImages unless IncludeDisabled, and EnableImage brings it back', async () => {
    const image = await copy();
    const imageId = image.ImageId ?? '';
    expect((await ec2.send(new DisableImageCommand({ ImageId: imageId }))).Return).toBe(true);
    const listed = async (includeDisabled: boolean) =>
      ((await ec2.send(new DescribeImagesCommand({ Owners: ['self'], IncludeDisabled: includeDisabled }))).Images ?? []).find((i) => i.ImageId === imageId);
    expect(await listed(false)).toBeUndefined();
    expect((await listed(true))?.State).toBe('disabled');
    expect((await ec2.send(new EnableImageCommand({ ImageId: imageId }))).Return).toBe(true);
    expect((await listed(false))?.State).toBe('available');
    // Only the owner may disable: the builder account's base image is not this account's.
    expect(await codeOf(ec2.send(new DisableImageCommand({ ImageId: BASE })))).toBe('AuthFailure');
  });

  it('sets DeprecationTime rounded to the minute and refuses a time in the past', async () => {
    const image = await copy();
    const at = new Date(Date.now() + 30 * 86_400_000);
    at.setUTCSeconds(40, 0);
    const rounded = new Date(at.getTime() + 20_000).toISOString();
    expect((await ec2.send(new EnableImageDeprecationCommand({ ImageId: image.ImageId, DeprecateAt: at }))).Return).toBe(true);
    expect((await describe1(image.ImageId ?? '')).DeprecationTime).toBe(rounded);
    expect(await codeOf(ec2.send(new EnableImageDeprecationCommand({ ImageId: image.ImageId, DeprecateAt: new Date(Date.UTC(2001, 0, 1)) })))).toBe(
      'InvalidParameterValue',
    );
  });

  it('refuses to deregister a protected image, and keeps refusing during the 24-hour cooldown', async () => {
    const image = await copy();
    const imageId = image.ImageId ?? '';
    expect((await describe1(imageId)).DeregistrationProtection).toBe('disabled');
    expect((await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId }))).Return).toBe('enabled-without-cooldown');
    expect(await codeOf(ec2.send(new DeregisterImageCommand({ ImageId: imageId })))).not.toBe('no error');
    expect((await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: imageId }))).Return).toBe('disabled');

    expect((await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId, WithCooldown: true }))).Return).toBe('enabled-with-cooldown');
    const disabled = (await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: imageId }))).Return ?? '';
    expect(disabled).toMatch(/^disabled-until \d{4}-\d\d-\d\dT/);
    expect((await describe1(imageId)).DeregistrationProtection).toBe(disabled);
    expect(await codeOf(ec2.send(new DeregisterImageCommand({ ImageId: imageId })))).not.toBe('no error');
    expect(await describe1(imageId)).toMatchObject({ ImageId: imageId, State: 'available' });
  });

  it('names the instances, launch templates and SSM parameters that reference an image', async () => {
    const image = await copy();
    const other = await copy();
    const imageId = image.ImageId ?? '';
    const template = await ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: `moto-ext-${accountId}`, LaunchTemplateData: { ImageId: imageId, InstanceType: 't3.micro' } }),
    );
    const templateId = template.LaunchTemplate?.LaunchTemplateId ?? '';
    await clients.ssm(REGION).send(new PutParameterCommand({ Name: '/moto-ext/latest', Value: imageId, Type: 'String', DataType: 'aws:ec2:image' }));
    const run = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }));
    const instanceId = run.Instances?.[0]?.InstanceId ?? '';

    const out = await ec2.send(new DescribeImageReferencesCommand({ ImageIds: [imageId, other.ImageId ?? ''], IncludeAllResourceTypes: true }));
    expect(out.ImageReferences).toEqual(
      expect.arrayContaining([
        { ImageId: imageId, ResourceType: 'ec2:Instance', Arn: `arn:aws:ec2:${REGION}:${accountId}:instance/${instanceId}` },
        { ImageId: imageId, ResourceType: 'ec2:LaunchTemplate', Arn: `arn:aws:ec2:${REGION}:${accountId}:launch-template/${templateId}` },
        { ImageId: imageId, ResourceType: 'ssm:Parameter', Arn: `arn:aws:ssm:${REGION}:${accountId}:parameter/moto-ext/latest` },
      ]),
    );
    expect(out.ImageReferences).toHaveLength(3);
    // A launch template version deeper than version-depth no longer counts.
    await ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: templateId, LaunchTemplateData: { ImageId: other.ImageId } }));
    const shallow = await ec2.send(
      new DescribeImageReferencesCommand({
        ImageIds: [imageId],
        ResourceTypes: [{ ResourceType: 'ec2:LaunchTemplate', ResourceTypeOptions: [{ OptionName: 'version-depth', OptionValues: ['1'] }] }],
      }),
    );
    expect(shallow.ImageReferences ?? []).toEqual([]);
    // The launch stamped LastLaunchedTime (AWS reports it up to 24 h later).
    expect((await describe1(imageId)).LastLaunchedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    expect((await describe1(other.ImageId ?? '')).LastLaunchedTime).toBeUndefined();

    expect(await codeOf(ec2.send(new DescribeImageReferencesCommand({ ImageIds: Array.from({ length: 11 }, () => imageId), IncludeAllResourceTypes: true })))).toBe(
      'InvalidParameterValue',
    );
  });

  it("reports an account's default Allowed AMIs setting", async () => {
    const out = await ec2.send(new GetAllowedImagesSettingsCommand({}));
    expect(out).toMatchObject({ State: 'disabled', ManagedBy: 'account' });
  });

  describe("CopyImage's ClientToken (local/moto_ext/client_tokens.py)", () => {
    const request = (token: string, name: string) => new CopyImageCommand({ SourceImageId: BASE, SourceRegion: REGION, Name: name, ClientToken: token });

    it('returns the original copy for the same token and parameters, also when sent at the same time, and makes nothing new', async () => {
      const token = `moto-ext-token-${Math.random().toString(36).slice(2)}`;
      const [a, b] = await Promise.all([ec2.send(request(token, `t-${token}`)), ec2.send(request(token, `t-${token}`))]);
      expect(a.ImageId).toBeDefined();
      expect(b.ImageId).toBe(a.ImageId);
      // Once the copy is deregistered, the token still answers with it (the original request's result).
      await ec2.send(new DeregisterImageCommand({ ImageId: a.ImageId }));
      expect((await ec2.send(request(token, `t-${token}`))).ImageId).toBe(a.ImageId);
    });

    it('refuses the same token with other parameters (IdempotentParameterMismatch)', async () => {
      const token = `moto-ext-token-${Math.random().toString(36).slice(2)}`;
      await ec2.send(request(token, 'first'));
      expect(await codeOf(ec2.send(request(token, 'second')))).toBe('IdempotentParameterMismatch');
    });

    it('makes a new copy for every call without a token', async () => {
      const [a, b] = await Promise.all([copy(), copy()]);
      expect(a.ImageId).not.toBe(b.ImageId);
    });
  });
});
