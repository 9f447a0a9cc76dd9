/**
 * AWS clients per account and region. The builder account uses the function's own credentials;
 * a target account is reached by assuming `targetRoleName` there (with the ExternalId when given),
 * once per account: the credentials are cached until five minutes before they expire.
 * Endpoints come from the SDK's standard settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, ...),
 * so the same code talks to AWS or to any AWS-compatible endpoint.
 *
 * A function names the client classes it uses (`clientFactory({ ec2: EC2Client, kms: KMSClient })`): only the
 * SDK clients a module imports end up in its bundle, so this module imports none but STS (for AssumeRole).
 * The CLI, the local tools and the tests take every service from ./clients.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { RbinClient } from './rbin-client';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { aws, type AwsErrorFactory, TargetRoleNotAssumableError } from './errors';

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
  /** Step Functions: whether an execution is still running (the share ledger, the janitor). */
  sfn(region: string): SFNClient;
  /** Organizations is global; `region` only picks the partition's endpoint. */
  organizations(region: string): OrganizationsClient;
  /** Recycle Bin (the doctor's check of retention rules; ./rbin-client says why it is not @aws-sdk/client-rbin). */
  rbin(region: string): RbinClient;
  s3(region: string): S3Client;
}

export type Service = keyof Clients;

export interface ClientConfig {
  region: string;
  maxAttempts: number;
  credentials?: AwsCredentialIdentityProvider;
}

/** The client classes a factory may build, e.g. `{ ec2: EC2Client, kms: KMSClient }`. */
export type ServiceConstructors = { [S in Service]?: new (config: ClientConfig) => ReturnType<Clients[S]> };

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

/** Where a partition's global services (IAM, Organizations) are called. */
function iamRegion(region: string): string {
  const partition = partitionOf(region);
  return partition === 'aws-cn' ? 'cn-north-1' : partition === 'aws-us-gov' ? 'us-gov-west-1' : 'us-east-1';
}

function clientSet(services: ServiceConstructors, credentials: AwsCredentialIdentityProvider | undefined): Clients {
  const cache = new Map<string, unknown>();
  function get<S extends Service>(service: S, region: string): ReturnType<Clients[S]> {
    const key = `${service}|${region}`;
    let client = cache.get(key) as ReturnType<Clients[S]> | undefined;
    if (!client) {
      const Client = services[service] as (new (config: ClientConfig) => ReturnType<Clients[S]>) | undefined;
      if (!Client) throw new Error(`This function's client factory has no ${service} client: add its class to clientFactory({ ... })`);
      client = new Client(credentials ? { region, maxAttempts: MAX_ATTEMPTS, credentials } : { region, maxAttempts: MAX_ATTEMPTS });
      cache.set(key, client);
    }
    return client;
  }
  return {
    ec2: (region) => get('ec2', region),
    kms: (region) => get('kms', region),
    autoScaling: (region) => get('autoScaling', region),
    ssm: (region) => get('ssm', region),
    iam: (region) => get('iam', iamRegion(region)),
    eventBridge: (region) => get('eventBridge', region),
    sns: (region) => get('sns', region),
    sfn: (region) => get('sfn', region),
    organizations: (region) => get('organizations', iamRegion(region)),
    rbin: (region) => get('rbin', region),
    s3: (region) => get('s3', region),
  };
}

/**
 * The memoised factory over `services`. `stsRegion` is where AssumeRole is called
 * (the function's own region keeps STS traffic regional).
 * Building one creates nothing until a client is asked for.
 */
export function clientFactory(services: ServiceConstructors, stsRegion = process.env.AWS_REGION ?? 'us-east-1'): ClientFactory {
  let builderClients: Clients | undefined;
  let sts: STSClient | undefined;
  const targets = new Map<string, Clients>();

  function assumer(access: TargetAccess): AwsCredentialIdentityProvider {
    let cached: AwsCredentialIdentity | undefined;
    let inflight: Promise<AwsCredentialIdentity> | undefined;
    const arn = roleArn(access.accountId, access.roleName, stsRegion);
    const assume = async (): Promise<AwsCredentialIdentity> => {
      sts ??= new STSClient({ region: stsRegion, maxAttempts: MAX_ATTEMPTS });
      const client = sts;
      const notAssumable: AwsErrorFactory = ({ code, message }, options) =>
        new TargetRoleNotAssumableError(
          `Cannot assume ${arn}: ${code}: ${message}. Deploy templates/target-account.yml in account ${access.accountId} ` +
            `(it creates role ${access.roleName} trusting this pipeline)` +
            (access.externalId ? ', and check that its ExternalId matches "externalId"' : '') +
            '.',
          options,
        );
      return aws(
        `Assuming ${arn}`,
        async () => {
          const out = await client.send(
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
        },
        { errors: { AccessDenied: notAssumable, AccessDeniedException: notAssumable, InvalidParameterValue: notAssumable, ValidationError: notAssumable } },
      );
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
      builderClients ??= clientSet(services, undefined);
      return builderClients;
    },
    target(access) {
      const key = `${access.accountId}|${access.roleName}|${access.externalId ?? ''}`;
      let clients = targets.get(key);
      if (!clients) {
        clients = clientSet(services, assumer(access));
        targets.set(key, clients);
      }
      return clients;
    },
  };
}
