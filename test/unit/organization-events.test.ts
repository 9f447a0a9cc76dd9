/**
 * The new-account path's event plumbing, checked with Organizations events as CloudTrail records them:
 * templates/organization.yml forwards exactly the three join events recorded in the management account, and
 * serverless.yml's rules turn each into the automatic (nightly) input, limited to the account when the event names it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseInput } from '../../functions/shared/input';
import { startFor } from '../../functions/start-execution';
import { checkTemplate, loadTemplate } from '../support/cfn';
import { matches, pipelineRules, transform, type Pattern } from '../support/event-pattern';
import { acceptHandshake, accountJoinedOrganization, createAccountResult, createOrganizationalUnit, moveAccount } from '../support/organization-events';

const NEW_ACCOUNT = '444455556666';
const rules = pipelineRules();
const template = loadTemplate(new URL('../../templates/organization.yml', import.meta.url));

/** The nightly schedule's input (the starter builds it from serverless.yml's params): what a new-account run starts from. */
function nightlyInput(): Record<string, unknown> {
  const doc = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as { params: { default: Record<string, string> } };
  const params = doc.params.default;
  const start = startFor(
    { source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-11-30T02:00:00Z' },
    {
      pipelineStateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:encrypted-ami-pipeline-prod',
      janitorStateMachineArn: '',
      region: 'eu-west-1',
      optInTagKey: params.optInTagKey ?? '',
      optInTagValue: params.optInTagValue ?? '',
      targetsParameter: params.targetsParameter ?? '',
    },
  );
  if ('ignore' in start) throw new Error(start.ignore);
  return start.input as Record<string, unknown>;
}

function inputsFor(event: unknown): { rule: string; input: unknown }[] {
  return rules.filter((r) => matches(r.pattern, event)).map((r) => ({ rule: r.name, input: r.inputTransformer ? transform(r.inputTransformer, event) : event }));
}

describe('the new-account rules of serverless.yml', () => {
  it.each([
    ['CreateAccountResult', createAccountResult(NEW_ACCOUNT), 'encrypted-ami-pipeline-account-created-prod'],
    ['MoveAccount', moveAccount(NEW_ACCOUNT, 'r-a1b2', 'ou-a1b2-f6g7h8i9'), 'encrypted-ami-pipeline-account-moved-prod'],
  ])('start the nightly input limited to the account a %s event names', (eventName, event, rule) => {
    const started = inputsFor(event);
    expect(started.map((s) => s.rule)).toEqual([rule]);
    expect(started[0]?.input).toEqual({ ...nightlyInput(), newAccount: { accountId: NEW_ACCOUNT, event: eventName } });
    expect(parseInput(started[0]?.input).newAccount).toEqual({ accountId: NEW_ACCOUNT, event: eventName });
  });

  it.each(['AWS Service Event via CloudTrail', 'AWS API Call via CloudTrail'])(
    'start the nightly input for the accounts that joined since the event, waiting for new roles, on AccountJoinedOrganization (%s): AWS does not document where the account is',
    (detailType) => {
      const event = accountJoinedOrganization(NEW_ACCOUNT, 'Invited', detailType);
      const started = inputsFor(event);
      expect(started.map((s) => s.rule)).toEqual(['encrypted-ami-pipeline-account-joined-prod']);
      expect(started[0]?.input).toEqual({ ...nightlyInput(), newAccount: { event: 'AccountJoinedOrganization', joinedAt: event.time } });
      expect(parseInput(started[0]?.input).newAccount).toEqual({ event: 'AccountJoinedOrganization', joinedAt: event.time });
    },
  );

  it('start nothing for AcceptHandshake, which the invited account records, not the management account', () => {
    expect(inputsFor(acceptHandshake(NEW_ACCOUNT))).toEqual([]);
  });

  it('start nothing for a failed account creation, a refused move or another Organizations call', () => {
    expect(inputsFor(createAccountResult(NEW_ACCOUNT, 'FAILED'))).toEqual([]);
    expect(inputsFor(moveAccount(NEW_ACCOUNT, 'r-a1b2', 'ou-a1b2-f6g7h8i9', 'DestinationParentNotFoundException'))).toEqual([]);
    expect(inputsFor(createOrganizationalUnit())).toEqual([]);
  });

  it('leave the new-image rule to EC2 events', () => {
    const ami = { source: 'aws.ec2', 'detail-type': 'EC2 AMI State Change', region: 'eu-west-1', detail: { ImageId: 'ami-0123456789abcdef0', State: 'available' } };
    expect(inputsFor(ami).map((s) => s.rule)).toEqual(['encrypted-ami-pipeline-new-image-prod']);
    expect(inputsFor(createAccountResult(NEW_ACCOUNT)).map((s) => s.rule)).not.toContain('encrypted-ami-pipeline-new-image-prod');
  });
});

describe('templates/organization.yml', () => {
  it('matches the CloudFormation resource specification', async () => {
    expect(await checkTemplate(template)).toEqual([]);
  });

  it('forwards the three join events the management account records, and no other Organizations call, to the builder account bus with a role', () => {
    const rule = template.Resources.ForwardAccountJoinsRule?.Properties as { EventPattern: Pattern; Targets: { Arn: unknown; RoleArn: unknown }[] };
    const joins = [
      createAccountResult(NEW_ACCOUNT),
      moveAccount(NEW_ACCOUNT, 'r-a1b2', 'ou-a1b2-f6g7h8i9'),
      accountJoinedOrganization(NEW_ACCOUNT, 'Invited'),
      accountJoinedOrganization(NEW_ACCOUNT, 'Invited', 'AWS API Call via CloudTrail'),
    ];
    for (const event of joins) expect(matches(rule.EventPattern, event), event.detail.eventName as string).toBe(true);
    expect(matches(rule.EventPattern, createOrganizationalUnit())).toBe(false);
    expect(matches(rule.EventPattern, acceptHandshake(NEW_ACCOUNT))).toBe(false);
    expect(rule.Targets).toHaveLength(1);
    expect(JSON.stringify(rule.Targets[0]?.Arn)).toContain(':events:${PipelineRegion}:${PipelineAccountId}:event-bus/default');
    expect(rule.Targets[0]?.RoleArn).toEqual({ 'Fn::GetAtt': ['ForwardToPipelineRole', 'Arn'] });
  });

  it('refuses to deploy outside us-east-1, where Organizations delivers its events', () => {
    const raw = readFileSync(new URL('../../templates/organization.yml', import.meta.url), 'utf8');
    expect(raw).toMatch(/Assert: !Equals \[!Ref 'AWS::Region', us-east-1\]/);
  });

  it('gives the reader role only the two list calls the pipeline makes, trusting the pipeline role', () => {
    const role = template.Resources.OrganizationReaderRole?.Properties as {
      AssumeRolePolicyDocument: { Statement: { Principal: unknown }[] };
      Policies: { PolicyDocument: { Statement: { Action: string | string[] }[] } }[];
    };
    const actions = role.Policies.flatMap((p) => p.PolicyDocument.Statement).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.sort()).toEqual(['organizations:ListAccountsForParent', 'organizations:ListOrganizationalUnitsForParent']);
    expect(JSON.stringify(role.AssumeRolePolicyDocument.Statement[0]?.Principal)).toContain(':role/${PipelineRoleName}');
  });
});
