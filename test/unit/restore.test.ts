import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImagesCommand,
  DisableImageDeregistrationProtectionCommand,
  EC2Client,
  EnableImageCommand,
  EnableImageDeregistrationProtectionCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { restoreCopy } from '../../functions/shared/restore';
import { ACCOUNT_A, awsError, rejection, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);
const OLD = 'ami-01111111111111111';
const BAD = 'ami-02222222222222222';
const PARAMETER = '/ami-pipeline/base/latest';
const clients = () => testClients().target({ accountId: ACCOUNT_A, roleName: 'AmiPipelineTarget', sessionName: 'ami-pipeline-restore' });
const request = { accountId: ACCOUNT_A, region: 'eu-west-1', imageId: OLD, parameterName: PARAMETER, protect: true } as const;

const image = (imageId: string, extra: Partial<Image> = {}, tags: { Key: string; Value: string }[] = []): Image => ({
  ImageId: imageId,
  State: 'available',
  Tags: [{ Key: 'ami-pipeline:managed-by', Value: 'encrypted-ami-pipeline' }, ...tags],
  ...extra,
});

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  ec2Mock.on(DescribeImagesCommand, { ImageIds: [OLD] }).resolves({ Images: [image(OLD, { State: 'disabled' }, [{ Key: 'ami-pipeline:retire-after', Value: '2026-12-06T12:00:00.000Z' }])] });
  ec2Mock.on(DescribeImagesCommand, { ImageIds: [BAD] }).resolves({ Images: [image(BAD, { DeregistrationProtection: 'enabled' }, [{ Key: 'ami-pipeline:protected', Value: 'true' }])] });
  ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: PARAMETER, Value: BAD, Version: 4 } });
  ssmMock.on(PutParameterCommand).resolves({ Version: 5 });
});

describe('restoreCopy', () => {
  it('enables a disabled copy, drops its retire-after tag, points the parameter back and moves the protection to it', async () => {
    const result = await restoreCopy(request, clients());

    expect(ec2Mock).toHaveReceivedCommandWith(EnableImageCommand, { ImageId: OLD });
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteTagsCommand, { Resources: [OLD], Tags: [{ Key: 'ami-pipeline:retire-after' }] });
    expect(ssmMock).toHaveReceivedCommandWith(PutParameterCommand, { Name: PARAMETER, Value: OLD, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true });
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [OLD], Tags: [{ Key: 'ami-pipeline:protected', Value: 'true' }] });
    expect(ec2Mock).toHaveReceivedCommandWith(EnableImageDeregistrationProtectionCommand, { ImageId: OLD, WithCooldown: false });
    expect(ec2Mock).toHaveReceivedCommandWith(DisableImageDeregistrationProtectionCommand, { ImageId: BAD });
    expect(result).toEqual({ imageId: OLD, was: 'disabled', parameter: { name: PARAMETER, previous: BAD, version: 5 }, protection: { imageId: OLD, movedFrom: BAD } });
  });

  it('refuses an image the pipeline did not make, before changing anything', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [OLD] }).resolves({ Images: [{ ImageId: OLD, State: 'disabled', Tags: [] }] });
    const error = await rejection(restoreCopy(request, clients()));
    expect(error.name).toBe('PublishFailedError');
    expect(error.message).toContain('not made by encrypted-ami-pipeline');
    expect(ec2Mock).toHaveReceivedCommandTimes(EnableImageCommand, 0);
    expect(ssmMock).toHaveReceivedCommandTimes(PutParameterCommand, 0);
  });

  it('says a deregistered copy is past restoring', async () => {
    ec2Mock.on(DescribeImagesCommand, { ImageIds: [OLD] }).rejects(awsError('InvalidAMIID.NotFound', `The image id '[${OLD}]' does not exist`));
    const error = await rejection(restoreCopy(request, clients()));
    expect(error.message).toContain('only a disabled copy in its grace period can be restored');
  });

  it('names the permission when EnableImage is refused', async () => {
    ec2Mock.on(EnableImageCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const error = await rejection(restoreCopy(request, clients()));
    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('ec2:EnableImage');
  });
});
