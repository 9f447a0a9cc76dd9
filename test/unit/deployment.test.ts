/**
 * What the deployment allows (functions/shared/deployment.ts): role names the target-access role may assume and
 * the SSM prefix target roles may write under. ResolveSource refuses an input outside them before any AWS call.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { deploymentIssues, limitsFromEnv } from '../../functions/shared/deployment';
import { parseInput } from '../../functions/shared/input';
import { resolveSource } from '../../functions/shared/resolve-source';
import type { InvalidInputError } from '../../functions/shared/errors';
import { ACCOUNT_A, BUILDER, rejection, SOURCE_IMAGE, testClients } from '../support/fixtures';
import { memoryRunStore } from '../support/run-store';

const ec2Mock = mockClient(EC2Client);
const kmsMock = mockClient(KMSClient);
const ssmMock = mockClient(SSMClient);
beforeEach(() => {
  ec2Mock.reset();
  kmsMock.reset();
  ssmMock.reset();
});

const LIMITS = { targetRoleNames: ['AmiPipelineTarget', 'AmiPipelineTargetEu'], publishParameterPrefix: '/ami-pipeline/' };
const input = (overrides: Record<string, unknown> = {}) =>
  parseInput({ source: { imageId: SOURCE_IMAGE, region: 'eu-west-1' }, targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }], ...overrides });

describe('deploymentIssues', () => {
  it('accepts the allowed role names and parameters under the prefix', () => {
    expect(deploymentIssues(input(), LIMITS)).toEqual([]);
    expect(deploymentIssues(input({ targetRoleName: 'AmiPipelineTargetEu', publish: { parameterName: '/ami-pipeline/{sourceName}/latest' } }), LIMITS)).toEqual([]);
  });

  it('refuses another role name, with the names allowed and the redeploy that would allow it', () => {
    const [issue] = deploymentIssues(input({ targetRoleName: 'OrganizationAccountAccessRole' }), LIMITS);
    expect(issue).toContain('targetRoleName: "OrganizationAccountAccessRole" is not a role this deployment may assume');
    expect(issue).toContain('allowed: AmiPipelineTarget, AmiPipelineTargetEu');
    expect(issue).toContain('--param="targetRoleNames=AmiPipelineTarget,AmiPipelineTargetEu,OrganizationAccountAccessRole"');
  });

  it('refuses a publish parameter outside the prefix, naming the prefix and the template parameter', () => {
    const [issue] = deploymentIssues(input({ publish: { parameterName: '/app/base-ami' } }), LIMITS);
    expect(issue).toContain('publish.parameterName: "/app/base-ami" is outside "/ami-pipeline/"');
    expect(issue).toContain('ParameterPrefix');
  });

  it('checks nothing it does not know (no environment)', () => {
    expect(deploymentIssues(input({ targetRoleName: 'Anything', publish: { parameterName: '/x/y' } }), limitsFromEnv({}))).toEqual([]);
  });

  it('reads the limits from the function environment serverless.yml sets', () => {
    expect(limitsFromEnv({ TARGET_ROLE_NAMES: 'A, B', PUBLISH_PARAMETER_PREFIX: '/p/' })).toEqual({ targetRoleNames: ['A', 'B'], publishParameterPrefix: '/p/' });
  });
});

describe('ResolveSource against the deployment', () => {
  it('refuses a role name the target-access role may not assume, before any AWS call', async () => {
    const deps = { clients: testClients(), pipelineRegion: 'eu-west-1', builderAccountId: async () => BUILDER, deployment: LIMITS, runsBucket: () => 'runs-bucket', store: memoryRunStore() };
    const raw = { source: { imageId: SOURCE_IMAGE, region: 'eu-west-1' }, targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }], targetRoleName: 'Admin', publish: { parameterName: '/app/x' } };
    const error = (await rejection(resolveSource({ input: raw, executionName: 'exec-1' }, deps))) as InvalidInputError;
    expect(error.name).toBe('InvalidInputError');
    expect(error.issues).toHaveLength(2);
    expect(error.message).toContain('targetRoleName: "Admin"');
    expect(error.message).toContain('publish.parameterName: "/app/x"');
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(kmsMock.calls()).toHaveLength(0);
  });
});
