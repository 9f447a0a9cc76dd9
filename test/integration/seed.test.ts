/**
 * The local world comes from the shipped template: local/seed.ts deploys templates/target-account.yml through
 * moto's CloudFormation, so each target's key, alias, key policy and role are the template's. moto keeps
 * CloudFormation-made policies as objects; the seed writes the key policy back as the JSON string AWS holds.
 */
import { GetRoleCommand, IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { MOTO_BUILDER_ACCOUNT } from '../../local/moto';
import { seed } from '../../local/seed';
import { createClientFactory, sessionNameFor } from '../../functions/shared/clients';
import { loadTemplate, render } from '../support/cfn';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const REGION = 'eu-west-1';
const template = loadTemplate(new URL('../../templates/target-account.yml', import.meta.url));

describe.skipIf(!MOTO_AVAILABLE)('the seed', () => {
  const suite = motoSuite();
  const account = uniqueAccount('51');
  let keys: Record<string, string>;

  beforeAll(async () => {
    ({ keys } = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: REGION, sourceImageName: 'ami-pipeline-integration-base', targets: [{ accountId: account, regions: [REGION] }] }));
  }, 60_000);

  it("deploys templates/target-account.yml: the template's key policy, alias and role", async () => {
    const clients = createClientFactory(REGION).target({ accountId: account, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('seed-test') });
    const keyArn = keys[`${account}/${REGION}`] ?? '';
    const kms: KMSClient = clients.kms(REGION);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/ami-encryption' }))).KeyMetadata?.Arn).toBe(keyArn);
    const policy = (await kms.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }))).Policy ?? '';
    expect(typeof policy).toBe('string');
    const rendered = render((template.Resources.AmiEncryptionKey?.Properties as { KeyPolicy: unknown }).KeyPolicy, template, {
      accountId: account,
      region: REGION,
      parameters: { PipelineAccountId: MOTO_BUILDER_ACCOUNT },
    });
    expect(JSON.parse(policy)).toEqual(rendered);

    const iam: IAMClient = clients.iam(REGION);
    const names = (await iam.send(new ListRolePoliciesCommand({ RoleName: 'AmiPipelineTarget' }))).PolicyNames ?? [];
    const shipped = (template.Resources.PipelineTargetRole?.Properties as { Policies: { PolicyName: string }[] }).Policies.map((p) => p.PolicyName);
    expect([...names].sort()).toEqual([...shipped].sort());
    // AWS returns the trust policy URL-encoded JSON; so does moto for this one.
    const trust = JSON.parse(decodeURIComponent((await iam.send(new GetRoleCommand({ RoleName: 'AmiPipelineTarget' }))).Role?.AssumeRolePolicyDocument ?? '{}')) as { Statement: { Principal: { AWS: string } }[] };
    expect(trust.Statement[0]?.Principal.AWS).toBe(`arn:aws:iam::${MOTO_BUILDER_ACCOUNT}:role/encrypted-ami-pipeline-prod-target-access`);
  });

  it('finds what it made on a second seed', async () => {
    const again = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: REGION, sourceImageName: 'ami-pipeline-integration-base', targets: [{ accountId: account, regions: [REGION] }] });
    expect(again.keys).toEqual(keys);
  });
});
