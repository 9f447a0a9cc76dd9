/**
 * The starter (functions/start-execution.ts): each trigger starts one execution under a name derived from it, so a
 * trigger delivered twice starts nothing new (Step Functions answers ExecutionAlreadyExists); the janitor starts only
 * for a pipeline execution that ended ABORTED, TIMED_OUT or FAILED.
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { startExecution, type StarterDeps } from '../../functions/start-execution';
import { awsError, rejection } from '../support/fixtures';
import { statusChangeEvent } from '../support/sfn-events';

const sfnMock = mockClient(SFNClient);
const PIPELINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:state-machine';
const JANITOR = 'arn:aws:states:us-east-1:123456789012:stateMachine:state-machine-janitor';
const deps = (): StarterDeps => ({
  sfn: (region) => new SFNClient({ region }),
  settings: {
    pipelineStateMachineArn: PIPELINE,
    janitorStateMachineArn: JANITOR,
    region: 'us-east-1',
    optInTagKey: 'ami-pipeline:distribute',
    optInTagValue: 'true',
    targetsParameter: '/ami-pipeline/targets',
  },
});

// EventBridge's documented samples: "Scheduled Event" (EventBridge User Guide, schedule rules) and "EC2 AMI State Change".
const scheduled = { version: '0', id: '89d1a02d-5ec7-412e-82f5-13505f849b41', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: '2026-11-30T02:00:00Z', region: 'us-east-1', resources: ['arn:aws:events:us-east-1:123456789012:rule/nightly'], detail: {} };
const newImage = {
  version: '0', id: '7f8e3ae3-2e4f-4d36-a0c2-0d0d1b5ba1d1', 'detail-type': 'EC2 AMI State Change', source: 'aws.ec2', account: '123456789012', time: '2026-11-30T10:00:00Z', region: 'us-east-1',
  resources: ['arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0'],
  detail: { RequestId: '5f3c1c1d-0000-0000-0000-000000000000', ImageId: 'ami-0123456789abcdef0', State: 'available', ErrorMessage: '' },
};

beforeEach(() => {
  sfnMock.reset();
  sfnMock.on(StartExecutionCommand).callsFake((input: { stateMachineArn: string; name: string }) => ({
    executionArn: `${input.stateMachineArn.replace(':stateMachine:', ':execution:')}:${input.name}`,
    startDate: new Date(),
  }));
});

const started = () => sfnMock.commandCalls(StartExecutionCommand).map((c) => ({ ...c.args[0].input, input: JSON.parse(c.args[0].input.input ?? '{}') as unknown }));

describe('startExecution', () => {
  it('starts the nightly run under a name from the scheduled time, with the opted-in filter and the targets parameter', async () => {
    const result = await startExecution(scheduled, deps());

    expect(started()).toEqual([
      {
        stateMachineArn: PIPELINE,
        name: 'nightly-20261130T0200Z',
        input: { source: { filter: { tags: { 'ami-pipeline:distribute': 'true' } }, region: 'us-east-1' }, targetsParameter: '/ami-pipeline/targets' },
      },
    ]);
    expect(result).toMatchObject({ started: true, name: 'nightly-20261130T0200Z' });
  });

  it('starts a run for a new image under a name from the image', async () => {
    await startExecution(newImage, deps());

    expect(started()).toEqual([
      {
        stateMachineArn: PIPELINE,
        name: 'new-image-us-east-1-ami-0123456789abcdef0',
        input: { source: { imageId: 'ami-0123456789abcdef0', region: 'us-east-1', optInTag: { key: 'ami-pipeline:distribute', value: 'true' } }, targetsParameter: '/ami-pipeline/targets' },
      },
    ]);
  });

  it.each(['ABORTED', 'TIMED_OUT', 'FAILED'])('starts the janitor for a pipeline execution that ended %s, named after that execution', async (status) => {
    const result = await startExecution(statusChangeEvent({ status }), deps());

    const [call] = started();
    expect(call).toMatchObject({ stateMachineArn: JANITOR, input: { execution: { arn: 'arn:aws:states:us-east-1:123456789012:execution:state-machine-name:execution-name' } } });
    expect(call?.name).toMatch(/^janitor-execution-name-[0-9a-f]{16}$/);
    expect(result.started).toBe(true);
  });

  it('gives every execution its own janitor name, within 80 characters, also for names that share their first 50', async () => {
    const long = (suffix: string) => `${'x'.repeat(70)}${suffix}`;
    await startExecution(statusChangeEvent({ status: 'ABORTED', name: long('a'), executionArn: `arn:aws:states:us-east-1:123456789012:execution:state-machine:${long('a')}` }), deps());
    await startExecution(statusChangeEvent({ status: 'ABORTED', name: long('b'), executionArn: `arn:aws:states:us-east-1:123456789012:execution:state-machine:${long('b')}` }), deps());
    const names = started().map((c) => c.name ?? '');
    expect(new Set(names).size).toBe(2);
    for (const name of names) expect(name.length).toBeLessThanOrEqual(80);
  });

  it.each(['RUNNING', 'SUCCEEDED', 'PENDING_REDRIVE'])('starts nothing for a pipeline execution that is %s', async (status) => {
    const result = await startExecution(statusChangeEvent({ status }), deps());

    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(result).toMatchObject({ started: false, reason: expect.stringContaining(status) as string });
  });

  it("starts nothing for another state machine's execution (a batch, a child, the janitor itself)", async () => {
    await startExecution(statusChangeEvent({ status: 'FAILED', stateMachineArn: JANITOR }), deps());
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('starts nothing again when the same trigger is delivered twice: Step Functions refuses the name', async () => {
    const names = new Set<string>();
    sfnMock.on(StartExecutionCommand).callsFake((input: { stateMachineArn: string; name: string }) => {
      if (names.has(input.name)) throw awsError('ExecutionAlreadyExists', `Execution Already Exists: '${input.stateMachineArn.replace(':stateMachine:', ':execution:')}:${input.name}'`);
      names.add(input.name);
      return { executionArn: `${input.stateMachineArn}:${input.name}`, startDate: new Date() };
    });
    for (const event of [scheduled, newImage, statusChangeEvent({ status: 'ABORTED' })]) {
      expect((await startExecution(event, deps())).started).toBe(true);
      const again = await startExecution(structuredClone(event), deps());
      expect(again).toMatchObject({ started: false, reason: expect.stringContaining('delivered before') as string });
    }
    expect(names.size).toBe(3);
  });

  it('refuses an event it does not handle, naming the rule to check', async () => {
    const error = await rejection(startExecution({ source: 'aws.s3', 'detail-type': 'Object Created', detail: {} }, deps()));
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain('rule that targets this function');
  });

  it('fails on other StartExecution errors, so that EventBridge retries the invocation', async () => {
    sfnMock.on(StartExecutionCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    const error = await rejection(startExecution(scheduled, deps()));
    expect(error.name).toBe('AwsThrottlingError');
  });
});
