/**
 * local/moto_ext/payload_limits.py: the payload limits of EventBridge, SNS and SSM (docs/limits.md cites each), over
 * the SDK as the pipeline's functions call them. Each limit is met exactly, then passed by one.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateTopicCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { MOTO_AVAILABLE, motoSuite } from '../support/moto';

const REGION = 'eu-west-1';

describe.skipIf(!MOTO_AVAILABLE)('the payload limits extension of moto', () => {
  motoSuite();
  let events: EventBridgeClient;
  let sns: SNSClient;
  let ssm: SSMClient;
  let topicArn: string;

  beforeAll(async () => {
    const config = { region: REGION };
    events = new EventBridgeClient(config);
    sns = new SNSClient(config);
    ssm = new SSMClient(config);
    topicArn = (await sns.send(new CreateTopicCommand({ Name: 'payload-limits' }))).TopicArn ?? '';
  });

  describe('EventBridge PutEvents', () => {
    // Source (12) + DetailType (9) + Detail ({"pad":""} is 10, then the pad): the entry's size as EventBridge counts it.
    const entry = (total: number) => ({ Source: 'ami-pipeline', DetailType: 'Run ended', Detail: JSON.stringify({ pad: 'p'.repeat(total - 12 - 9 - 10) }) });

    it('takes entries that total 262,143 bytes', async () => {
      const out = await events.send(new PutEventsCommand({ Entries: [entry(262_143)] }));
      expect(out.FailedEntryCount).toBe(0);
    });

    it('refuses the request when its entries total 256 KB, counting every entry', async () => {
      await expect(events.send(new PutEventsCommand({ Entries: [entry(262_144)] }))).rejects.toMatchObject({ name: 'ValidationException' });
      await expect(events.send(new PutEventsCommand({ Entries: [entry(131_072), entry(131_072)] }))).rejects.toMatchObject({
        name: 'ValidationException',
        message: expect.stringContaining('262144 bytes') as string,
      });
    });
  });

  describe('SNS Publish', () => {
    it('takes a message of 262,144 bytes', async () => {
      await expect(sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'm'.repeat(262_144) }))).resolves.toHaveProperty('MessageId');
    });

    it('refuses a message one byte longer, counting UTF-8 bytes, not characters', async () => {
      await expect(sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'm'.repeat(262_145) }))).rejects.toMatchObject({ name: 'InvalidParameterException' });
      // 131,073 characters of two bytes each: moto alone takes it; AWS does not.
      await expect(sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'é'.repeat(131_073) }))).rejects.toMatchObject({
        name: 'InvalidParameterException',
        message: 'Invalid parameter: Message too long',
      });
    });
  });

  describe('SSM PutParameter', () => {
    const put = (Name: string, length: number, Tier?: 'Standard' | 'Advanced' | 'Intelligent-Tiering') =>
      ssm.send(new PutParameterCommand({ Name, Value: 'v'.repeat(length), Type: 'String', Overwrite: true, ...(Tier ? { Tier } : {}) }));

    it('takes 4,096 characters in the Standard tier and refuses 4,097 with AWS message', async () => {
      await expect(put('/limits/standard', 4_096)).resolves.toHaveProperty('Version');
      await expect(put('/limits/standard', 4_097, 'Standard')).rejects.toMatchObject({
        name: 'ValidationException',
        message: expect.stringContaining('Standard tier parameters support a maximum parameter value of 4096 characters') as string,
      });
    });

    it('takes 8,192 characters in the Advanced tier (or with Intelligent-Tiering) and refuses 8,193', async () => {
      await expect(put('/limits/advanced', 8_192, 'Advanced')).resolves.toMatchObject({ Tier: 'Advanced' });
      await expect(put('/limits/intelligent', 5_000, 'Intelligent-Tiering')).resolves.toHaveProperty('Version');
      await expect(put('/limits/advanced', 8_193, 'Advanced')).rejects.toMatchObject({ name: 'ValidationException' });
    });
  });
});
