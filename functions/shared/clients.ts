/**
 * AWS clients per account and region. The builder account uses the function's own credentials;
 * a target account is reached by assuming `targetRoleName` there (with the ExternalId when given),
 * once per account: the credentials are cached until five minutes before they expire.
 * Endpoints come from the SDK's standard settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, ...),
 * so the same code talks to AWS or to any AWS-compatible endpoint.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { awsErrorDetail, TargetRoleNotAssumableError, toPipelineError } from './errors';

export interface TargetAccess {
  accountId: string;
  roleName: string;
  externalId?: string | undefined;
  /** Shown in CloudTrail as the assumed-role session name. */
  sessionName: string;
}

export interface Clients {
  ec2(region: string): EC2Client;
  kms(region: string): KMSClient;
  autoScaling(region: string): AutoScalingClient;
  ssm(region: string): SSMClient;
  /** IAM is global; `region` only picks the partition's endpoint. */
  iam(region: string): IAMClient;
  eventBridge(region: string): EventBridgeClient;
  sns(region: string): SNSClient;
}

export interface ClientFactory {
  /** Clients acting as the builder account (the function's own role). */
  builder(): Clients;
  /** Clients acting inside a target account through its pipeline role. */
  target(access: TargetAccess): Clients;
}

const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;
const MAX_ATTEMPTS = 4;

export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

export function roleArn(accountId: string, roleName: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:role/${roleName}`;
}

/** Session names allow [\w+=,.@-] and at most 64 characters. */
export function sessionNameFor(executionName: string): string {
  return `ami-pipeline-${executionName}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

function clientSet(credentials: AwsCredentialIdentityProvider | undefined): Clients {
  const cache = new Map<string, EC2Client | KMSClient | AutoScalingClient | SSMClient | IAMClient | EventBridgeClient | SNSClient>();
  function get<T extends EC2Client | KMSClient | AutoScalingClient | SSMClient | IAMClient | EventBridgeClient | SNSClient>(
    kind: string,
    region: string,
    make: (config: { region: string; maxAttempts: number; credentials?: AwsCredentialIdentityProvider }) => T,
  ): T {
    const key = `${kind}|${region}`;
    let client = cache.get(key) as T | undefined;
    if (!client) {
      client = make(credentials ? { region, maxAttempts: MAX_ATTEMPTS, credentials } : { region, maxAttempts: MAX_ATTEMPTS });
      cache.set(key, client);
    }
    return client;
  }
  return {
    ec2: (region) => get('ec2', region, (c) => new EC2Client(c)),
    kms: (region) => get('kms', region, (c) => new KMSClient(c)),
    autoScaling: (region) => get('autoscaling', region, (c) => new AutoScalingClient(c)),
    ssm: (region) => get('ssm', region, (c) => new SSMClient(c)),
    iam: (region) => {
      const home = partitionOf(region) === 'aws-cn' ? 'cn-north-1' : partitionOf(region) === 'aws-us-gov' ? 'us-gov-west-1' : 'us-east-1';
      return get('iam', home, (c) => new IAMClient(c));
    },
    eventBridge: (region) => get('events', region, (c) => new EventBridgeClient(c)),
    sns: (region) => get('sns', region, (c) => new SNSClient(c)),
  };
}

/**
 * The memoised factory handlers use. `stsRegion` is where AssumeRole is called
 * (the function's own region keeps STS traffic regional).
 */
export function createClientFactory(stsRegion = process.env.AWS_REGION ?? 'us-east-1'): ClientFactory {
  let builderClients: Clients | undefined;
  let sts: STSClient | undefined;
  const targets = new Map<string, Clients>();

  function assumer(access: TargetAccess): AwsCredentialIdentityProvider {
    let cached: AwsCredentialIdentity | undefined;
    let inflight: Promise<AwsCredentialIdentity> | undefined;
    const arn = roleArn(access.accountId, access.roleName, stsRegion);
    const assume = async (): Promise<AwsCredentialIdentity> => {
      sts ??= new STSClient({ region: stsRegion, maxAttempts: MAX_ATTEMPTS });
      try {
        const out = await sts.send(
          new AssumeRoleCommand({
            RoleArn: arn,
            RoleSessionName: access.sessionName,
            ExternalId: access.externalId,
            DurationSeconds: 3600,
          }),
        );
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('AssumeRole returned no credentials');
        return {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          sessionToken: c.SessionToken,
          expiration: c.Expiration,
        };
      } catch (error) {
        const { code, message } = awsErrorDetail(error);
        if (code === 'AccessDenied' || code === 'AccessDeniedException' || code === 'InvalidParameterValue' || code === 'ValidationError') {
          throw new TargetRoleNotAssumableError(
            `Cannot assume ${arn}: ${code}: ${message}. Deploy templates/target-account.yml in account ${access.accountId} ` +
              `(it creates role ${access.roleName} trusting this pipeline)` +
              (access.externalId ? ', and check that its ExternalId matches "externalId"' : '') +
              '.',
            { cause: error, aws: { code, message } },
          );
        }
        throw toPipelineError(error, `Assuming ${arn}`);
      }
    };
    return async () => {
      if (cached?.expiration && cached.expiration.getTime() - Date.now() > REFRESH_BEFORE_EXPIRY_MS) return cached;
      if (cached && !cached.expiration) return cached;
      inflight ??= assume().finally(() => {
        inflight = undefined;
      });
      cached = await inflight;
      return cached;
    };
  }

  return {
    builder() {
      builderClients ??= clientSet(undefined);
      return builderClients;
    },
    target(access) {
      const key = `${access.accountId}|${access.roleName}|${access.externalId ?? ''}`;
      let clients = targets.get(key);
      if (!clients) {
        clients = clientSet(assumer(access));
        targets.set(key, clients);
      }
      return clients;
    },
  };
}

/** One factory per Lambda container: credentials and connections survive warm invocations. */
export const defaultClientFactory: ClientFactory = createClientFactory();
