import {
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  OrganizationsClient,
  type Account,
} from '@aws-sdk/client-organizations';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ClientFactory, TargetAccess } from '../../functions/shared/client-factory';
import { InvalidInputError, TargetRoleNotAssumableError } from '../../functions/shared/errors';
import { parseInput } from '../../functions/shared/input';
import { MAX_LISTED, resolveTargets } from '../../functions/shared/organization';
import type { RunPlan, TargetPair } from '../../functions/shared/plan';
import { resolveSource } from '../../functions/shared/resolve-source';
import { expansionLine } from '../../cli/render';
import { awsError, BUILDER, rejection, testClients } from '../support/fixtures';
import { memoryRunStore } from '../support/run-store';

const orgMock = mockClient(OrganizationsClient);

const ROOT = 'r-ab12';
const OU_APPS = 'ou-ab12-11111111';
const OU_APPS_CHILD = 'ou-ab12-22222222';
const OU_APPS_GRANDCHILD = 'ou-ab12-33333333';
const OU_DATA = 'ou-ab12-44444444';

const account = (Id: string, State: Account['State'] = 'ACTIVE'): Account => ({ Id, Arn: `arn:aws:organizations::999999999999:account/o-abc1234567/${Id}`, Name: Id, State });

/** The organization as Organizations lists it: accounts and child OUs per parent. */
function organization(tree: Record<string, { accounts?: Account[]; ous?: string[] }>): void {
  orgMock.on(ListAccountsForParentCommand).callsFake((input: { ParentId: string }) => ({ Accounts: tree[input.ParentId]?.accounts ?? [] }));
  orgMock
    .on(ListOrganizationalUnitsForParentCommand)
    .callsFake((input: { ParentId: string }) => ({ OrganizationalUnits: (tree[input.ParentId]?.ous ?? []).map((Id) => ({ Id, Name: Id })) }));
}

function input(targets: unknown[], extra: Record<string, unknown> = {}) {
  return parseInput({ source: { imageId: 'ami-0123456789abcdef0', region: 'eu-west-1' }, targets, ...extra });
}

const ouEntry = (organizationalUnitId: string, more: Record<string, unknown> = {}) => ({
  organizationalUnitId, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption', ...more,
});

const deps = (clients: ClientFactory = testClients()) => ({ clients, pipelineRegion: 'eu-west-1', sessionName: 'ami-pipeline-test' });

describe('resolveTargets', () => {
  beforeEach(() => orgMock.reset());

  it('follows the pages of both list calls', async () => {
    orgMock
      .on(ListAccountsForParentCommand, { ParentId: OU_APPS })
      .resolves({ Accounts: [account('111111111111')], NextToken: 'accounts-2' })
      .on(ListAccountsForParentCommand, { ParentId: OU_APPS, NextToken: 'accounts-2' })
      .resolves({ Accounts: [account('222222222222')] })
      .on(ListAccountsForParentCommand, { ParentId: OU_APPS_CHILD })
      .resolves({ Accounts: [account('333333333333')] })
      .on(ListAccountsForParentCommand, { ParentId: OU_DATA })
      .resolves({ Accounts: [account('444444444444')] });
    orgMock
      .on(ListOrganizationalUnitsForParentCommand)
      .resolves({ OrganizationalUnits: [] })
      .on(ListOrganizationalUnitsForParentCommand, { ParentId: OU_APPS })
      .resolves({ OrganizationalUnits: [{ Id: OU_APPS_CHILD }], NextToken: 'ous-2' })
      .on(ListOrganizationalUnitsForParentCommand, { ParentId: OU_APPS, NextToken: 'ous-2' })
      .resolves({ OrganizationalUnits: [{ Id: OU_DATA }] });
    const { targets } = await resolveTargets(input([ouEntry(OU_APPS)]), deps());
    expect(targets.map((t) => t.accountId).sort()).toEqual(['111111111111', '222222222222', '333333333333', '444444444444']);
    expect(orgMock).toHaveReceivedCommandWith(ListAccountsForParentCommand, { ParentId: OU_APPS, NextToken: 'accounts-2' });
    expect(orgMock).toHaveReceivedCommandWith(ListOrganizationalUnitsForParentCommand, { ParentId: OU_APPS, NextToken: 'ous-2' });
  });

  it('includes child OUs at any depth, and every account of the root', async () => {
    organization({
      [ROOT]: { accounts: [account('100000000000')], ous: [OU_APPS, OU_DATA] },
      [OU_APPS]: { accounts: [account('111111111111')], ous: [OU_APPS_CHILD] },
      [OU_APPS_CHILD]: { accounts: [account('222222222222')], ous: [OU_APPS_GRANDCHILD] },
      [OU_APPS_GRANDCHILD]: { accounts: [account('333333333333')] },
      [OU_DATA]: { accounts: [account('444444444444')] },
    });
    const apps = await resolveTargets(input([ouEntry(OU_APPS)]), deps());
    expect(apps.targets.map((t) => [t.accountId, t.organizationalUnitId])).toEqual([
      ['111111111111', OU_APPS],
      ['222222222222', OU_APPS],
      ['333333333333', OU_APPS],
    ]);
    const root = await resolveTargets(input([ouEntry(ROOT)]), deps());
    expect(root.targets.map((t) => t.accountId)).toEqual(['100000000000', '111111111111', '222222222222', '333333333333', '444444444444']);
    expect(root.organization).toEqual([
      { organizationalUnitId: ROOT, found: 5, targeted: root.targets.map((t) => t.accountId), skipped: [], excluded: [], coveredElsewhere: [] },
    ]);
  });

  it('skips suspended and closing accounts and lists them with their state, and removes the excluded ones', async () => {
    organization({
      [OU_APPS]: {
        accounts: [
          account('111111111111'),
          account('222222222222', 'SUSPENDED'),
          account('333333333333', 'PENDING_CLOSURE'),
          { Id: '555555555555', Status: 'SUSPENDED' } satisfies Account,
          account('444444444444'),
        ],
      },
    });
    const { targets, organization: expansion } = await resolveTargets(input([ouEntry(OU_APPS, { excludeAccountIds: ['444444444444'] })]), deps());
    expect(targets.map((t) => t.accountId)).toEqual(['111111111111']);
    expect(expansion).toEqual([
      {
        organizationalUnitId: OU_APPS,
        found: 5,
        targeted: ['111111111111'],
        skipped: [
          { accountId: '222222222222', state: 'SUSPENDED' },
          { accountId: '333333333333', state: 'PENDING_CLOSURE' },
          { accountId: '555555555555', state: 'SUSPENDED' },
        ],
        excluded: ['444444444444'],
        coveredElsewhere: [],
      },
    ]);
  });

  it('lets an explicit accountId entry win over an OU entry, and takes an account two OU entries share with the same settings once', async () => {
    organization({
      [OU_APPS]: { accounts: [account('111111111111'), account('222222222222')], ous: [OU_APPS_CHILD] },
      [OU_APPS_CHILD]: { accounts: [account('333333333333')] },
    });
    const { targets, organization: expansion } = await resolveTargets(
      input([
        ouEntry(OU_APPS),
        ouEntry(OU_APPS_CHILD),
        { accountId: '222222222222', regions: ['us-east-1'], kmsKey: 'alias/special' },
      ]),
      deps(),
    );
    expect(targets.map((t) => [t.accountId, t.organizationalUnitId, t.regions, t.kmsKey])).toEqual([
      ['222222222222', null, ['us-east-1'], 'alias/special'],
      ['111111111111', OU_APPS, ['eu-west-1'], 'alias/ami-encryption'],
      ['333333333333', OU_APPS, ['eu-west-1'], 'alias/ami-encryption'],
    ]);
    expect(expansion[0]?.coveredElsewhere).toEqual(['222222222222']);
    expect(expansion[1]).toMatchObject({ organizationalUnitId: OU_APPS_CHILD, targeted: [], coveredElsewhere: ['333333333333'] });
  });

  it('refuses two OU entries that reach one account with different settings, naming both OUs', async () => {
    organization({
      [OU_APPS]: { accounts: [account('111111111111')], ous: [OU_APPS_CHILD] },
      [OU_APPS_CHILD]: { accounts: [account('333333333333')] },
    });
    const error = await rejection(resolveTargets(input([ouEntry(OU_APPS), ouEntry(OU_APPS_CHILD, { regions: ['eu-west-1', 'us-east-1'] })]), deps()));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain(`account 333333333333 is in both ${OU_APPS} and ${OU_APPS_CHILD}`);
    expect(error.message).toContain('excludeAccountIds');
  });

  it('says to set up the delegation policy or the organization role when Organizations refuses the builder account', async () => {
    orgMock.on(ListAccountsForParentCommand).rejects(
      awsError('AccessDeniedException', 'You don\'t have permissions to access this resource.'),
    );
    const error = await rejection(resolveTargets(input([ouEntry(OU_APPS)]), deps()));
    expect(error.name).toBe('OrganizationAccessDeniedError');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('AccessDeniedException');
    expect(error.message).toContain('put-resource-policy');
    expect(error.message).toContain('organization.roleArn');
  });

  it('reads the organization through organization.roleArn, and says to deploy templates/organization.yml when that role is refused', async () => {
    const real = testClients();
    const access: TargetAccess[] = [];
    const clients: ClientFactory = { builder: () => real.builder(), target: (a) => (access.push(a), real.builder()) };
    organization({ [OU_APPS]: { accounts: [account('111111111111')] } });
    const roleArn = 'arn:aws:iam::123456789012:role/org/ami-pipeline-org-reader';
    const ok = await resolveTargets(input([ouEntry(OU_APPS)], { organization: { roleArn } }), deps(clients));
    expect(ok.targets.map((t) => t.accountId)).toEqual(['111111111111']);
    expect(access).toEqual([{ accountId: '123456789012', roleName: 'org/ami-pipeline-org-reader', sessionName: 'ami-pipeline-test' }]);

    orgMock.on(ListAccountsForParentCommand).rejects(
      new TargetRoleNotAssumableError('Cannot assume it', { aws: { code: 'AccessDenied', message: 'not authorized to perform: sts:AssumeRole' } }),
    );
    const error = await rejection(resolveTargets(input([ouEntry(OU_APPS)], { organization: { roleArn } }), deps(clients)));
    expect(error.name).toBe('OrganizationAccessDeniedError');
    expect(error.message).toContain(roleArn);
    expect(error.message).toContain('templates/organization.yml');
    expect(error.message).toContain('sts:AssumeRole');
  });

  it('treats throttling by Organizations as retryable, and an unknown OU as bad input', async () => {
    orgMock.on(ListAccountsForParentCommand).rejects(awsError('TooManyRequestsException', 'AWS Organizations can\'t complete your request because another request is already in progress.'));
    const throttled = await rejection(resolveTargets(input([ouEntry(OU_APPS)]), deps()));
    expect(throttled.name).toBe('AwsThrottlingError');
    expect(throttled.retryable).toBe(true);

    orgMock.reset();
    orgMock.on(ListAccountsForParentCommand).rejects(awsError('ParentNotFoundException', 'We can\'t find a root or OU with the ParentId that you specified.'));
    const unknown = await rejection(resolveTargets(input([ouEntry(OU_DATA)]), deps()));
    expect(unknown.name).toBe('InvalidInputError');
    expect(unknown.message).toContain(OU_DATA);
  });

  it('counts rather than lists skipped accounts past MAX_LISTED, so the run output stays small', async () => {
    const suspended = Array.from({ length: MAX_LISTED + 30 }, (_, n) => account(String(500000000000 + n), 'SUSPENDED'));
    organization({ [OU_APPS]: { accounts: [account('111111111111'), ...suspended] } });
    const { organization: [expansion] } = await resolveTargets(input([ouEntry(OU_APPS)]), deps());
    expect(expansion?.found).toBe(MAX_LISTED + 31);
    expect(expansion?.skipped).toHaveLength(MAX_LISTED);
    expect(expansion?.notListed).toEqual({ skipped: 30, excluded: 0, coveredElsewhere: 0 });
    expect(expansion?.targeted).toEqual(['111111111111']);
  });

  it('renders each OU expansion as one line of the CLI report', () => {
    expect(
      expansionLine({
        organizationalUnitId: OU_APPS, found: 4, targeted: ['111111111111'], skipped: [{ accountId: '222222222222', state: 'PENDING_CLOSURE' }],
        excluded: ['333333333333'], coveredElsewhere: ['444444444444'],
      }),
    ).toBe(`${OU_APPS}: 4 account(s) found; 1 targeted; skipped (not ACTIVE): 222222222222 PENDING_CLOSURE; excluded: 333333333333; targeted by another entry: 444444444444`);
  });

  it('makes no Organizations call without OU entries', async () => {
    const { targets, organization: expansion } = await resolveTargets(input([{ accountId: '111111111111', regions: ['eu-west-1'], kmsKey: 'alias/a' }]), deps());
    expect(targets).toEqual([{ accountId: '111111111111', organizationalUnitId: null, regions: ['eu-west-1'], kmsKey: 'alias/a' }]);
    expect(expansion).toEqual([]);
    expect(orgMock.calls()).toHaveLength(0);
  });
});

describe('resolveSource with OU entries', () => {
  beforeEach(() => orgMock.reset());
  const TEN_REGIONS = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'ap-southeast-2'];
  // A rekey resolves no source image: the plan is all targets, so no EC2 mocks are needed.
  const rekey = (targets: unknown[], extra: Record<string, unknown> = {}) => ({
    mode: 'rekey', publish: { parameterName: '/ami-pipeline/base/latest' }, targets, ...extra,
  });
  const store = memoryRunStore();
  const snapshotDeps = { clients: testClients(), pipelineRegion: 'eu-west-1', builderAccountId: async () => BUILDER, runsBucket: () => 'runs-bucket', store };
  /** The Distributed Map's items: the targets file ResolveSource wrote for the run. */
  const targetsOf = (plan: RunPlan) => store.files.get(`${plan.files.bucket}/${plan.files.targetsKey}`) as TargetPair[] | undefined;

  it('plans one pair per resolved account and region, each naming its OU, and states the expansion', async () => {
    organization({ [OU_APPS]: { accounts: [account('111111111111'), account('222222222222', 'SUSPENDED')] } });
    const plan = await resolveSource({ input: rekey([ouEntry(OU_APPS, { regions: ['eu-west-1', 'us-east-1'] })]), executionName: 'exec-1' }, snapshotDeps);
    expect(targetsOf(plan)).toEqual([
      { accountId: '111111111111', organizationalUnitId: OU_APPS, region: 'eu-west-1', kmsKey: 'alias/ami-encryption', subnetId: null },
      { accountId: '111111111111', organizationalUnitId: OU_APPS, region: 'us-east-1', kmsKey: 'alias/ami-encryption', subnetId: null },
    ]);
    expect(plan.organization).toEqual([
      { organizationalUnitId: OU_APPS, found: 2, targeted: ['111111111111'], skipped: [{ accountId: '222222222222', state: 'SUSPENDED' }], excluded: [], coveredElsewhere: [] },
    ]);
  });

  it('refuses an OU that expands past what one run takes, with the count and the limit, instead of truncating', async () => {
    organization({ [OU_APPS]: { accounts: Array.from({ length: 101 }, (_, n) => account(String(300000000000 + n))) } });
    const error = await rejection(resolveSource({ input: rekey([ouEntry(OU_APPS, { regions: TEN_REGIONS })]), executionName: 'exec-1' }, snapshotDeps));
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain(OU_APPS);
    expect(error.message).toContain('1010 account-region pairs are too many for one run (at most 1000 per run');
  });

  it("holds the resolved accounts to the payload model validation applies to inline targets", async () => {
    organization({ [OU_APPS]: { accounts: Array.from({ length: 400 }, (_, n) => account(String(300000000000 + n))) } });
    const plan = await resolveSource({ input: rekey([ouEntry(OU_APPS)]), executionName: 'exec-1' }, snapshotDeps);
    // 400 accounts fit the Distributed Map's payloads: each target is its own child execution.
    expect(plan.targetCount).toBe(400);
    expect(targetsOf(plan)).toHaveLength(400);
  });

  it('limits a new-account run to that account, and skips the run when the account is not a target', async () => {
    organization({ [OU_APPS]: { accounts: [account('111111111111'), account('222222222222'), account('333333333333', 'SUSPENDED')] } });
    const only = await resolveSource(
      { input: rekey([ouEntry(OU_APPS)], { newAccount: { accountId: '222222222222', event: 'MoveAccount' } }), executionName: 'exec-1' },
      snapshotDeps,
    );
    expect(only.skipped).toBe(false);
    expect(only.settings.awaitDeployment).toBe(true);
    expect(targetsOf(only)?.map((t) => t.accountId)).toEqual(['222222222222']);
    for (const outsider of ['333333333333', '999999999999']) {
      const none = await resolveSource(
        { input: rekey([ouEntry(OU_APPS)], { newAccount: { accountId: outsider } }), executionName: 'exec-2' },
        snapshotDeps,
      );
      expect(none.skipped).toBe(true);
      expect(none.skipReason).toContain(`account ${outsider} is not a target`);
      expect(none.targetCount).toBe(0);
      expect(targetsOf(none)).toBeUndefined();
    }
  });
});
