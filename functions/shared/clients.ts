/**
 * The client factory over every service the pipeline uses, for the CLI, the local tools and the tests.
 * Lambda functions do not build it: each names its own clients through ./client-factory (`clientFactory`), so its
 * bundle holds only those (test/package/bundles.test.ts checks).
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { KMSClient } from '@aws-sdk/client-kms';
import { SFNClient } from '@aws-sdk/client-sfn';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { RbinClient } from './rbin-client';
import { clientFactory, type ClientFactory, type ServiceConstructors } from './client-factory';

export * from './client-factory';

export const ALL_SERVICES: Required<ServiceConstructors> = {
  ec2: EC2Client,
  kms: KMSClient,
  autoScaling: AutoScalingClient,
  ssm: SSMClient,
  iam: IAMClient,
  eventBridge: EventBridgeClient,
  sns: SNSClient,
  sfn: SFNClient,
  organizations: OrganizationsClient,
  rbin: RbinClient,
  s3: S3Client,
};

/** Every service, memoised per account and region; `stsRegion` is where AssumeRole is called. */
export function createClientFactory(stsRegion = process.env.AWS_REGION ?? 'us-east-1'): ClientFactory {
  return clientFactory(ALL_SERVICES, stsRegion);
}
