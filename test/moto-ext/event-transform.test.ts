/**
 * local/moto_ext/event_transform.py: EventBridge's input transformation as the EventBridge User Guide's "Input transform
 * examples" show it, on its example EC2 event: a variable outside quotes becomes its value as JSON (strings quoted),
 * inside a quoted string the text; `$.time` is the event's ISO 8601 time ("Amazon EventBridge events").
 */
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { MOTO_AVAILABLE, motoSuite } from '../support/moto';

describe.skipIf(!MOTO_AVAILABLE)('the input transformation extension of moto', () => {
  motoSuite();

  it("turns the guide's example event into the guide's output", async () => {
    const config = { region: 'us-east-1' };
    const events = new EventBridgeClient(config);
    const sqs = new SQSClient(config);
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'event-transform' }))).QueueUrl ?? '';
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn ?? '';
    await events.send(new PutRuleCommand({ Name: 'event-transform', EventPattern: JSON.stringify({ source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] }) }));
    await events.send(
      new PutTargetsCommand({
        Rule: 'event-transform',
        Targets: [{
          Id: 'queue',
          Arn: queueArn,
          InputTransformer: {
            InputPathsMap: { instance: '$.detail.instance-id', state: '$.detail.state', time: '$.time' },
            InputTemplate: '{"instance": <instance>, "state": [9, <state>, true], "Transformed": "Yes", "message": "<instance> is in state \\"<state>\\"", "at": <time>}',
          },
        }],
      }),
    );
    await events.send(
      new PutEventsCommand({
        Entries: [{
          Source: 'aws.ec2',
          DetailType: 'EC2 Instance State-change Notification',
          Detail: JSON.stringify({ 'instance-id': 'i-0123456789', state: 'RUNNING' }),
        }],
      }),
    );
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    expect((received.Messages ?? []).map((m) => JSON.parse(m.Body ?? '') as unknown)).toEqual([
      { instance: 'i-0123456789', state: [9, 'RUNNING', true], Transformed: 'Yes', message: 'i-0123456789 is in state "RUNNING"', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown },
    ]);
  });
});
