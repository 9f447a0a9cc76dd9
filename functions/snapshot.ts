/**
 * States: ResolveSource. Serverless function: snapshot.
 * ResolveSource: validates the execution input (loading the targets document from SSM for automatic runs),
 * resolves the source image in the builder account (by ID or newest match of a filter), its snapshots and their keys,
 * and refuses what cannot work; writes the run's targets (one item per account and region) to the runs bucket.
 * Returns the RunPlan: the source, where the targets are and how many, the settings.
 * Throws InvalidInputError, SourceImageNotFoundError, SourceImageNotAvailableError, SourceNotEbsBackedError,
 * SourceNotShareableError (AWS managed key, or not owned by the builder account), SourceKeyNotSharedError.
 * The core lives in functions/shared/resolve-source.ts, because the CLI's doctor and cleanup resolve a run too.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { clientFactory } from './shared/client-factory';
import { limitsFromEnv } from './shared/deployment';
import { lambdaHandler } from './shared/handler';
import { resolveSource, type ResolveSourceEvent, type SnapshotDeps } from './shared/resolve-source';
import { runsBucket, s3RunStore } from './shared/run-store';

let callerAccount: Promise<string> | undefined;
const defaultClients = clientFactory({ ec2: EC2Client, kms: KMSClient, ssm: SSMClient, organizations: OrganizationsClient, s3: S3Client });
export const defaultDeps: SnapshotDeps = {
  clients: defaultClients,
  // The runs bucket (RUNS_BUCKET): ResolveSource writes the run's targets there, the Distributed Map's items.
  runsBucket: () => runsBucket(),
  store: s3RunStore(() => defaultClients.builder().s3(process.env.AWS_REGION ?? 'us-east-1')),
  pipelineRegion: process.env.AWS_REGION ?? 'us-east-1',
  builderAccountId: () => {
    callerAccount ??= new STSClient({ region: process.env.AWS_REGION ?? 'us-east-1' })
      .send(new GetCallerIdentityCommand({}))
      .then((r) => r.Account ?? '');
    return callerAccount;
  },
  deployment: limitsFromEnv(),
};

export const makeHandler = (deps: SnapshotDeps = defaultDeps) =>
  lambdaHandler(
    'ResolveSource',
    (event) => ({ executionName: (event as Partial<ResolveSourceEvent> | null)?.executionName }),
    (event) => {
      const e = (event ?? {}) as Partial<ResolveSourceEvent>;
      return resolveSource({ input: e.input, executionName: typeof e.executionName === 'string' ? e.executionName : 'manual' }, deps);
    },
  );

export const handler = makeHandler();
