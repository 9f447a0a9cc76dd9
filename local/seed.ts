/**
 * Prepares an AWS-compatible endpoint (moto, LocalStack) for a local run: in each target account and region
 * a customer managed key with the alias the input names, as templates/ would make it, and the builder
 * account's base image, found by name. Idempotent: a second seed finds what the first made.
 */
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { createClientFactory, sessionNameFor } from '../functions/shared/clients';

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

    const factory = createClientFactory(options.sourceRegion);
    const keys: Record<string, string> = {};
    for (const target of options.targets) {
      const clients = factory.target({
        accountId: target.accountId,
        roleName: options.targetRoleName ?? 'AmiPipelineTarget',
        sessionName: sessionNameFor('seed'),
      });
      for (const region of target.regions) {
        const kms: KMSClient = clients.kms(region);
        let arn: string | undefined;
        try {
          arn = (await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.Arn;
        } catch (error) {
          if ((error as Error).name !== 'NotFoundException') throw error;
          const created = await kms.send(
            new CreateKeyCommand({
              Description: `encrypted-ami-pipeline: AMI copies of account ${target.accountId}`,
              KeySpec: 'SYMMETRIC_DEFAULT',
              KeyUsage: 'ENCRYPT_DECRYPT',
            }),
          );
          arn = created.KeyMetadata?.Arn;
          await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: created.KeyMetadata?.KeyId }));
        }
        if (!arn) throw new Error(`no key for ${target.accountId}/${region}`);
        keys[`${target.accountId}/${region}`] = arn;
      }
    }
    return { sourceImageId, keys };
  } finally {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
  }
}
