/**
 * The new-account path end to end over the in-memory AWS: an Organizations event goes through the shipped rule
 * (serverless.yml) into the real definition, whose targets come from the SSM document's OU entry; the run targets the
 * new account alone, waits (bounded) for a role its StackSet has not deployed yet, and fails with that explanation
 * when it never appears.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDefinition, type EventLog, type Json } from '../../local/asl';
import { FakeAws } from '../../bench/fake-aws';
import { matches, pipelineRules, transform } from '../support/event-pattern';
import { ACCOUNT_A, ACCOUNT_B, BUILDER } from '../support/fixtures';
import { accountJoinedOrganization, createAccountResult, moveAccount } from '../support/organization-events';
import { pipelineHandlers } from '../../bench/handlers';
import { checkEventsAndRestore, manifestOf } from '../support/run-output';

const ROOT = 'r-ab12';
const OU_APPS = 'ou-ab12-11111111';
const OU_SANDBOX = 'ou-ab12-22222222';
const OUTSIDER = '333333333333';

let aws: FakeAws;

/** What the shipped rules start for `event` (exactly one rule must match). */
function startedBy(event: unknown): Json {
  const started = pipelineRules().filter((r) => matches(r.pattern, event));
  expect(started).toHaveLength(1);
  const transformer = started[0]?.inputTransformer;
  if (!transformer) throw new Error('the new-account rule has no input transformer');
  return transform(transformer, event) as Json;
}

const retried = (events: EventLog[], state: string) => events.filter((e) => e.type === 'StateRetried' && e.state?.name === state).length;


beforeEach(() => {
  aws = new FakeAws();
  const image = aws.addSourceImage('eu-west-1');
  const source = aws.images.get(image);
  if (source) source.tags = [{ Key: 'ami-pipeline:distribute', Value: 'true' }];
  aws.organization.set(ROOT, { accounts: [], ous: [OU_APPS, OU_SANDBOX] });
  // ACCOUNT_A is long in the organization; ACCOUNT_B joined just before the samples' events (their time: 10:00:00Z).
  aws.organization.set(OU_APPS, {
    accounts: [
      { Id: ACCOUNT_A, State: 'ACTIVE', JoinedTimestamp: new Date('2024-03-01T08:00:00Z') },
      { Id: ACCOUNT_B, State: 'ACTIVE', JoinedTimestamp: new Date('2026-11-30T09:59:53Z') },
    ],
    ous: [],
  });
  aws.organization.set(OU_SANDBOX, { accounts: [{ Id: OUTSIDER, State: 'ACTIVE' }], ous: [] });
  aws.parameters.set('/ami-pipeline/targets', JSON.stringify({ targets: [{ organizationalUnitId: OU_APPS, regions: ['eu-west-1', 'us-east-1'], kmsKey: 'alias/ami-encryption' }] }));
  for (const account of [ACCOUNT_A, ACCOUNT_B]) for (const region of ['eu-west-1', 'us-east-1']) aws.addKey(account, region);
});
afterEach(() => checkEventsAndRestore(aws));

describe('a new account', () => {
  it('moved into a targeted OU gets the current image in that account alone', async () => {
    const run = await runDefinition(startedBy(moveAccount(ACCOUNT_B, OU_SANDBOX, OU_APPS)), pipelineHandlers(), { executionName: 'moved' });
    expect(run.error).toBeUndefined();
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.map((r) => [r.accountId, r.organizationalUnitId, r.region, r.status])).toEqual([
      [ACCOUNT_B, OU_APPS, 'eu-west-1', 'succeeded'],
      [ACCOUNT_B, OU_APPS, 'us-east-1', 'succeeded'],
    ]);
    expect(manifest.organization).toMatchObject([{ organizationalUnitId: OU_APPS, targeted: [ACCOUNT_A, ACCOUNT_B] }]);
    const touched = new Set(aws.calls.filter((c) => c.account !== BUILDER).map((c) => c.account));
    expect([...touched]).toEqual([ACCOUNT_B]);
    expect(aws.images.get([...aws.images.keys()][0] ?? '')?.launchPermission.size).toBe(0);
  });

  it('waits for the role its StackSet is still deploying, then copies', async () => {
    aws.roleDeployedAfter.set(ACCOUNT_B, 3);
    const run = await runDefinition(startedBy(createAccountResult(ACCOUNT_B)), pipelineHandlers(), { executionName: 'created' });
    expect(run.error).toBeUndefined();
    expect(manifestOf(run).status).toBe('SUCCEEDED');
    // Three refused AssumeRole calls, each failing a PreflightTarget attempt (the two regions' targets may share one).
    expect(retried(run.events, 'PreflightTarget')).toBeGreaterThanOrEqual(3);
    expect(retried(run.events, 'PreflightTarget')).toBeLessThanOrEqual(6);
    expect(aws.roleDeployedAfter.get(ACCOUNT_B)).toBe(0);
  });

  it('fails with the StackSet explanation when the role never appears, after a bounded wait', async () => {
    aws.unassumable.add(ACCOUNT_B);
    const run = await runDefinition(startedBy(createAccountResult(ACCOUNT_B)), pipelineHandlers(), { executionName: 'never' });
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('FAILED');
    expect(manifest.results.map((r) => r.error?.name)).toEqual(['TargetNotYetDeployedError', 'TargetNotYetDeployedError']);
    expect(manifest.results[0]?.error?.message).toContain('StackSet');
    // Each target: its first try and the retrier's 10 more, then the Catch.
    expect(retried(run.events, 'PreflightTarget')).toBe(20);
  });

  it('that joined by invitation (AccountJoinedOrganization, which does not say which account) gets a run of the accounts that joined since, waiting for its role', async () => {
    aws.roleDeployedAfter.set(ACCOUNT_B, 1);
    const run = await runDefinition(startedBy(accountJoinedOrganization(ACCOUNT_B, 'Invited')), pipelineHandlers(), { executionName: 'joined' });
    expect(run.error).toBeUndefined();
    const manifest = manifestOf(run);
    expect(manifest.status).toBe('SUCCEEDED');
    expect(manifest.results.map((r) => `${r.accountId}/${r.region}`).sort()).toEqual([`${ACCOUNT_B}/eu-west-1`, `${ACCOUNT_B}/us-east-1`]);
    expect(retried(run.events, 'PreflightTarget')).toBeGreaterThanOrEqual(1);
    expect(aws.calls.filter((c) => c.account === ACCOUNT_A)).toEqual([]);
  });

  it('joined more than an hour before an AccountJoinedOrganization event is left to the nightly run', async () => {
    aws.organization.set(OU_APPS, { accounts: [{ Id: ACCOUNT_B, State: 'ACTIVE', JoinedTimestamp: new Date('2026-11-30T08:59:59Z') }], ous: [] });
    const run = await runDefinition(startedBy(accountJoinedOrganization(ACCOUNT_B, 'Invited')), pipelineHandlers(), { executionName: 'joined-earlier' });
    expect(run.error).toBeUndefined();
    expect(run.events.some((e) => e.type === 'StateEntered' && e.state?.name === 'SourceNotOptedIn')).toBe(true);
    expect(JSON.stringify(run.output)).toContain('joined the organization since 2026-11-30T09:00:00.000Z');
    expect(aws.calls.filter((c) => c.account !== BUILDER)).toEqual([]);
  });

  it('outside every targeted OU starts a run that does nothing', async () => {
    const run = await runDefinition(startedBy(moveAccount(OUTSIDER, OU_APPS, OU_SANDBOX)), pipelineHandlers(), { executionName: 'outsider' });
    expect(run.error).toBeUndefined();
    expect(run.events.some((e) => e.type === 'StateEntered' && e.state?.name === 'SourceNotOptedIn')).toBe(true);
    expect(aws.calls.filter((c) => c.account !== BUILDER)).toEqual([]);
    expect(aws.callsTo('ModifyImageAttribute')).toEqual([]);
  });
});
