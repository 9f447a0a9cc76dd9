/**
 * OU targets against moto: an organization of the builder account (moto's default account is its management account)
 * with an OU of two accounts, a child OU of one, another OU not targeted, an excluded account and a closed one
 * (CloseAccount makes it SUSPENDED). The run, through the local runner and the functions' bundles, copies into exactly
 * the three, with manifest lines naming the OU, and states the expansion.
 */
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import {
  CloseAccountCommand,
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient } from '@aws-sdk/client-organizations';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClientFactory, sessionNameFor } from '../../functions/shared/clients';
import { runLocal } from '../../local/runner';
import { seed } from '../../local/seed';
import { MOTO_AVAILABLE, motoSuite } from '../support/moto';

const REGION = 'eu-west-1';

describe.skipIf(!MOTO_AVAILABLE)('OU targets against moto', () => {
  let org: OrganizationsClient;

  const suite = motoSuite({ bundles: true });
  beforeAll(() => {
    org = new OrganizationsClient({ region: 'us-east-1' });
  });

  async function account(name: string, parentId: string, rootId: string): Promise<string> {
    const created = await org.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }));
    const id = created.CreateAccountStatus?.AccountId ?? '';
    expect(created.CreateAccountStatus?.State).toBe('SUCCEEDED');
    await org.send(new MoveAccountCommand({ AccountId: id, SourceParentId: rootId, DestinationParentId: parentId }));
    return id;
  }

  it('copies into exactly the ACTIVE, not excluded accounts of the OU and its child, each line naming the OU', async () => {
    await org.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' })).catch(async (error: unknown) => {
      if ((error as Error).name !== 'AlreadyInOrganizationException') throw error;
      await org.send(new DescribeOrganizationCommand({}));
    });
    const rootId = (await org.send(new ListRootsCommand({}))).Roots?.[0]?.Id ?? '';
    const suffix = String(process.pid);
    const ou = async (name: string, parentId: string) =>
      (await org.send(new CreateOrganizationalUnitCommand({ Name: `${name}-${suffix}`, ParentId: parentId }))).OrganizationalUnit?.Id ?? '';
    const apps = await ou('apps', rootId);
    const appsChild = await ou('apps-eu', apps);
    const sandbox = await ou('sandbox', rootId);
    const [a1, a2, child, excluded, closed, other] = [
      await account(`a1-${suffix}`, apps, rootId),
      await account(`a2-${suffix}`, apps, rootId),
      await account(`child-${suffix}`, appsChild, rootId),
      await account(`excluded-${suffix}`, apps, rootId),
      await account(`closed-${suffix}`, apps, rootId),
      await account(`other-${suffix}`, sandbox, rootId),
    ];
    await org.send(new CloseAccountCommand({ AccountId: closed }));

    const targets = [a1, a2, child];
    const { sourceImageId } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: REGION,
      sourceImageName: 'ami-pipeline-integration-base',
      targets: [...targets, excluded, other].map((accountId) => ({ accountId, regions: [REGION] })) });
    const run = await runLocal(
      {
        source: { imageId: sourceImageId, region: REGION },
        targets: [{ organizationalUnitId: apps, regions: [REGION], kmsKey: 'alias/ami-encryption', excludeAccountIds: [excluded] }],
        verify: { mode: 'none' } },
      { endpointUrl: suite.moto.endpoint, region: REGION, bundles: suite.bundles },
    );
    expect(run.error).toBeUndefined();
    expect(run.manifest?.status).toBe('SUCCEEDED');
    expect(run.manifest?.results.map((r) => [r.accountId, r.organizationalUnitId, r.status]).sort()).toEqual(
      targets.map((a) => [a, apps, 'succeeded']).sort(),
    );
    expect(run.manifest?.organization).toEqual([
      {
        organizationalUnitId: apps,
        found: 5,
        targeted: [...targets].sort(),
        skipped: [{ accountId: closed, state: 'SUSPENDED' }],
        excluded: [excluded],
        coveredElsewhere: [] },
    ]);
    const clients = createClientFactory(REGION);
    const copiesIn = async (accountId: string) =>
      (
        await clients
          .target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('inspect') })
          .ec2(REGION)
          .send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:ami-pipeline:source-image', Values: [sourceImageId] }] }))
      ).Images ?? [];
    for (const accountId of targets) expect(await copiesIn(accountId), accountId).toHaveLength(1);
    for (const accountId of [excluded, other]) expect(await copiesIn(accountId), accountId).toEqual([]);
  }, 240_000);
});
