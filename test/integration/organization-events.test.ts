/**
 * The new-account event path through EventBridge on moto, not only statically: the Organizations events (the samples
 * of test/support/organization-events.ts) are put on the management account's default bus in us-east-1, whose rule is
 * templates/organization.yml's (pattern and target as shipped); the forwarded events reach the builder account's
 * default bus, whose rules are serverless.yml's organization rules (patterns and input transformers as shipped), and
 * what those deliver is the run input.
 *
 * What moto does not do, and where it is covered instead: it delivers no Step Functions target (NotImplementedError),
 * so an SQS queue in the builder account stands in for the state machine (test/statemachine/new-account.test.ts runs
 * the definition on these inputs); it evaluates neither the forwarding role (RoleArn) nor the builder bus's resource
 * policy (test/unit/organization-events.test.ts and test/package/ check them statically); it lets a test put events
 * with an `aws.` source, which AWS reserves (there CloudTrail puts them); and it re-puts a forwarded event with the
 * target's account and region and a new id and time, where AWS keeps the original's (the rules read only `detail`).
 */
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { parseInput } from '../../functions/shared/input';
import { createClientFactory } from '../../functions/shared/clients';
import { loadTemplate } from '../support/cfn';
import { pipelineRules, type Pattern } from '../support/event-pattern';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';
import {
  acceptHandshake,
  accountJoinedOrganization,
  createAccountResult,
  createOrganizationalUnit,
  moveAccount,
} from '../support/organization-events';

const PIPELINE_REGION = 'eu-west-1';
const NEW_ACCOUNT = '444455556666';

describe.skipIf(!MOTO_AVAILABLE)('Organizations events through EventBridge on moto', () => {
  motoSuite();

  it("forwards the three join events from the management account's bus to the builder's, whose rules deliver the run input; nothing else", async () => {
    const [management, builder] = [uniqueAccount('44'), uniqueAccount('44')] as [string, string];
    const factory = createClientFactory(PIPELINE_REGION);
    const as = (accountId: string) => factory.target({ accountId, roleName: 'events-test', sessionName: 'events-test' });
    const managementBus: EventBridgeClient = as(management).eventBridge('us-east-1');
    const builderBus: EventBridgeClient = as(builder).eventBridge(PIPELINE_REGION);

    // The management account: templates/organization.yml's rule, its target rendered for this builder account.
    const forward = loadTemplate(new URL('../../templates/organization.yml', import.meta.url)).Resources.ForwardAccountJoinsRule?.Properties as { EventPattern: Pattern };
    await managementBus.send(new PutRuleCommand({ Name: 'forward-account-joins', EventPattern: JSON.stringify(forward.EventPattern) }));
    await managementBus.send(
      new PutTargetsCommand({
        Rule: 'forward-account-joins',
        Targets: [{ Id: 'encrypted-ami-pipeline', Arn: `arn:aws:events:${PIPELINE_REGION}:${builder}:event-bus/default`, RoleArn: `arn:aws:iam::${management}:role/forward` }],
      }),
    );

    // The builder account: serverless.yml's organization rules, an SQS queue in place of the state machine.
    const sqs = new SQSClient({ region: PIPELINE_REGION, credentials: builderBus.config.credentials });
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'pipeline-starts' }))).QueueUrl ?? '';
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn ?? '';
    const organizationRules = pipelineRules().filter((r) => JSON.stringify(r.pattern.source) === '["aws.organizations"]');
    expect(organizationRules).toHaveLength(3);
    for (const rule of organizationRules) {
      await builderBus.send(new PutRuleCommand({ Name: rule.name, EventPattern: JSON.stringify(rule.pattern) }));
      const transformer = rule.inputTransformer;
      if (!transformer) throw new Error(`${rule.name} has no input transformer`);
      await builderBus.send(
        new PutTargetsCommand({ Rule: rule.name, Targets: [{ Id: 'pipeline', Arn: queueArn, InputTransformer: { InputPathsMap: transformer.inputPathsMap, InputTemplate: transformer.inputTemplate } }] }),
      );
    }

    const events = [
      createAccountResult(NEW_ACCOUNT),
      createAccountResult(NEW_ACCOUNT, 'FAILED'),
      moveAccount(NEW_ACCOUNT, 'r-a1b2', 'ou-a1b2-f6g7h8i9'),
      moveAccount(NEW_ACCOUNT, 'r-a1b2', 'ou-a1b2-f6g7h8i9', 'DestinationParentNotFoundException'),
      accountJoinedOrganization(NEW_ACCOUNT, 'Invited'),
      acceptHandshake(NEW_ACCOUNT),
      createOrganizationalUnit(),
    ];
    const put = await managementBus.send(
      new PutEventsCommand({ Entries: events.map((e) => ({ Source: e.source, DetailType: e['detail-type'], Detail: JSON.stringify(e.detail) })) }),
    );
    expect(put.FailedEntryCount).toBe(0);

    // moto delivers while PutEvents runs: what is in the queue now is everything that arrived.
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    const inputs = (received.Messages ?? []).map((m) => parseInput(JSON.parse(m.Body ?? '') as unknown).newAccount);
    expect(inputs).toEqual(
      expect.arrayContaining([
        { accountId: NEW_ACCOUNT, event: 'CreateAccountResult' },
        { accountId: NEW_ACCOUNT, event: 'MoveAccount' },
        // The time moto stamped on the event, as the ISO 8601 text AWS gives (parseInput above accepted it).
        { event: 'AccountJoinedOrganization', joinedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown },
      ]),
    );
    expect(inputs).toHaveLength(3);
  });
});
