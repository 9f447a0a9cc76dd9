import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createNotifyDeps,
  handler,
  notify,
  summary,
  type NotifyEvent,
} from '../../functions/notify';
import type { RunSummary } from '../../functions/shared/manifest-schema';
import { logger } from '../../functions/shared/logger';
import { ACCOUNT_A, ACCOUNT_B, BUILDER, SOURCE_IMAGE, SOURCE_SNAPSHOT, awsError, rejection, source } from '../support/fixtures';

const ebMock = mockClient(EventBridgeClient);
const snsMock = mockClient(SNSClient);

const TOPIC = `arn:aws:sns:eu-west-1:${BUILDER}:ami-pipeline`;
const EVENT_ID = '11111111-2222-3333-4444-555555555555';
const MESSAGE_ID = '95df01b4-ee98-5cb9-9903-4c221d41eb5e';
const ENTRY_LIMIT = 256 * 1024;
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

type Line = RunSummary['failed'][number];

function failed(accountId: string, region: string, error = 'LaunchFailedError'): Line {
  return { accountId, region, status: 'failed', error };
}

const MANIFEST = { bucket: 'runs-bucket', key: 'runs/exec-1/manifest.json', uri: 's3://runs-bucket/runs/exec-1/manifest.json' };

/** A PARTIAL run's summary as the state machine reports it: A succeeded, B failed its launch check, the share was revoked. */
function manifest(overrides: Partial<RunSummary> = {}): RunSummary {
  return {
    status: 'PARTIAL',
    executionName: 'exec-1',
    source,
    sourceShare: { revoked: true, accountIds: [ACCOUNT_A, ACCOUNT_B], snapshotIds: [SOURCE_SNAPSHOT] },
    counts: { targets: 2, succeeded: 1, failed: 1 },
    failed: [failed(ACCOUNT_B, 'eu-west-1')],
    manifest: MANIFEST,
    mapRunArn: null,
    ...overrides,
  };
}

/** More than 300 KB: 5,000 failed targets listed (far more than a summary holds: the trimming is defence in depth). */
function largeManifest(): RunSummary {
  const many = Array.from({ length: 5000 }, (_, n) => failed(String(400000000000 + n), 'eu-west-1'));
  return manifest({ counts: { targets: 5002, succeeded: 2, failed: 5000 }, failed: many });
}

const deps = () => createNotifyDeps('eu-west-1');
const event = (overrides: Partial<NotifyEvent> = {}): NotifyEvent => ({ manifest: manifest(), topicArn: null, ...overrides });

function putEntries() {
  return ebMock.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries ?? []).flat();
}
function sentDetail(): unknown {
  return JSON.parse(putEntries()[0]?.Detail ?? 'null');
}

beforeEach(() => {
  ebMock.reset();
  snsMock.reset();
  vi.restoreAllMocks();
  ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: EVENT_ID }] });
  snsMock.on(PublishCommand).resolves({ MessageId: MESSAGE_ID });
});

describe('the event detail', () => {
  it('is the whole manifest when it fits in one entry', async () => {
    const m = manifest();
    const { truncated } = await notify(event({ manifest: m }), deps());
    const detail = putEntries()[0]?.Detail ?? '';
    expect(truncated).toBe(false);
    expect(JSON.parse(detail)).toEqual(m);
  });

  it('keeps the counts and where the manifest is when the failed targets alone pass 256 KB', async () => {
    const m = largeManifest();
    expect(bytes(JSON.stringify(m))).toBeGreaterThan(300 * 1024);
    const { truncated } = await notify(event({ manifest: m }), deps());
    const detail = putEntries()[0]?.Detail ?? '';
    expect(truncated).toBe(true);
    expect(bytes(detail) + bytes('encrypted-ami-pipeline') + bytes('AMI Distribution Failed')).toBeLessThan(ENTRY_LIMIT);
    expect(JSON.parse(detail)).toEqual({
      status: 'PARTIAL',
      executionName: 'exec-1',
      truncated: true,
      counts: { targets: 5002, succeeded: 2, failed: 5000 },
      manifest: MANIFEST,
    });
  });
});

describe('summary', () => {
  it('names the status, the succeeded count and the source image in the subject', () => {
    expect(summary(manifest()).subject).toBe(`AMI distribution PARTIAL: 1/2 targets (${SOURCE_IMAGE})`);
    expect(summary(manifest({ status: 'SUCCEEDED', counts: { targets: 1, succeeded: 1, failed: 0 }, failed: [] })).subject).toBe(
      `AMI distribution SUCCEEDED: 1/1 targets (${SOURCE_IMAGE})`,
    );
  });

  it('keeps the subject to at most 100 ASCII characters whatever it quotes', () => {
    const { subject } = summary(manifest({ source: { ...source, imageId: `ami-${'é'.repeat(120)}` } }));
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(subject).toMatch(/^[\x20-\x7E]+$/);
    expect(subject.startsWith('AMI distribution PARTIAL: 1/2 targets (ami-???')).toBe(true);
  });

  it('says the source is still shared and why when the share was not revoked', () => {
    const { message } = summary(
      manifest({
        sourceShare: {
          revoked: false,
          error: {
            Error: 'AwsThrottlingError',
            Cause: JSON.stringify({ errorType: 'AwsThrottlingError', errorMessage: 'Unsharing ami-1 failed: RequestLimitExceeded: Request limit exceeded.' }),
          },
        },
      }),
    );
    expect(message).toContain(
      'Source share: NOT revoked, the source image may still be shared with the target accounts ' +
        '(AwsThrottlingError: Unsharing ami-1 failed: RequestLimitExceeded: Request limit exceeded.)',
    );
  });

  it('reports a run refused before any target with its error and no source', async () => {
    const refused = manifest({
      status: 'FAILED',
      source: null,
      sourceShare: { revoked: true },
      counts: null,
      failed: [],
      manifest: null,
      error: { name: 'SourceImageNotFoundError', message: `Image ${SOURCE_IMAGE} does not exist in eu-west-1.` },
    });
    const { subject, message } = summary(refused);
    expect(subject).toBe('AMI distribution FAILED: 0/0 targets (no source)');
    expect(message).toBe(
      [
        'Status: FAILED',
        `Error: SourceImageNotFoundError: Image ${SOURCE_IMAGE} does not exist in eu-west-1.`,
        'Source image: not resolved',
        'Targets: 0 (0 succeeded, 0 failed)',
        '',
        'Source share: revoked (no permission this run or an ended run added remains on the source image or its snapshots)',
        'Execution: exec-1',
      ].join('\n'),
    );
    await notify(event({ manifest: refused }), deps());
    expect(sentDetail()).toEqual(refused);
  });

  it('lists no failed targets when every target succeeded', () => {
    const { message } = summary(manifest({ status: 'SUCCEEDED', counts: { targets: 1, succeeded: 1, failed: 0 }, failed: [] }));
    expect(message).toBe(
      [
        'Status: SUCCEEDED',
        `Source image: ${SOURCE_IMAGE} (base-image-2026-11-29) in eu-west-1, account ${BUILDER}`,
        'Targets: 1 (1 succeeded, 0 failed)',
        '',
        'Source share: revoked (no permission this run or an ended run added remains on the source image or its snapshots)',
        'Execution: exec-1',
        `Manifest: ${MANIFEST.uri}`,
      ].join('\n'),
    );
  });

  it('lists the failures that fit in 256 KB and counts the rest', () => {
    const targets = Array.from({ length: 2000 }, (_, n) => failed(String(400000000000 + n), 'eu-west-1', 'y'.repeat(2000)));
    const { message } = summary(manifest({ status: 'FAILED', counts: { targets: 2000, succeeded: 0, failed: 2000 }, failed: targets }));
    expect(bytes(message)).toBeLessThanOrEqual(256 * 1024);
    const lines = message.split('\n').filter((l) => l.startsWith('- '));
    const listed = lines.length - 1;
    expect(listed).toBeGreaterThan(200);
    expect(lines.every((l) => l.length <= 1000)).toBe(true);
    expect(lines.at(-1)).toBe(`- ... and ${2000 - listed} more (see the manifest)`);
  });
});

describe('notify', () => {
  it('puts the manifest on the default bus as "AMI Distribution Completed" when every target succeeded', async () => {
    const m = manifest({ status: 'SUCCEEDED', counts: { targets: 2, succeeded: 2, failed: 0 }, failed: [] });
    const result = await notify(event({ manifest: m }), deps());
    expect(ebMock).toHaveReceivedCommandTimes(PutEventsCommand, 1);
    expect(putEntries()).toEqual([
      { Source: 'encrypted-ami-pipeline', DetailType: 'AMI Distribution Completed', Detail: expect.any(String), EventBusName: 'default' },
    ]);
    expect(sentDetail()).toEqual(m);
    expect(result).toEqual({ eventId: EVENT_ID, messageId: null, truncated: false });
  });

  it.each(['PARTIAL', 'FAILED'] as const)('puts a %s run on the default bus as "AMI Distribution Failed"', async (status) => {
    const m = manifest({ status });
    await notify(event({ manifest: m }), deps());
    expect(putEntries()).toEqual([
      { Source: 'encrypted-ami-pipeline', DetailType: 'AMI Distribution Failed', Detail: expect.any(String), EventBusName: 'default' },
    ]);
    expect(sentDetail()).toEqual(m);
  });

  it('sends the event to the bus of the pipeline region', async () => {
    await notify(event(), createNotifyDeps('ap-southeast-2'));
    const client = ebMock.call(0).thisValue as EventBridgeClient;
    expect(await client.config.region()).toBe('ap-southeast-2');
  });

  it('sends a 300 KB manifest truncated to its failed targets and says so', async () => {
    const warn = vi.spyOn(logger, 'warn');
    const result = await notify(event({ manifest: largeManifest() }), deps());
    expect(result.truncated).toBe(true);
    const entry = putEntries()[0];
    expect(bytes(entry?.Detail ?? '') + bytes(entry?.Source ?? '') + bytes(entry?.DetailType ?? '')).toBeLessThan(ENTRY_LIMIT);
    expect(sentDetail()).toMatchObject({ truncated: true, counts: { failed: 5000 }, manifest: MANIFEST });
    expect(warn).toHaveBeenCalledWith('Event detail truncated', expect.objectContaining({ kept: 'counts' }));
  });

  it('logs no truncation for a manifest that fits', async () => {
    const warn = vi.spyOn(logger, 'warn');
    await notify(event(), deps());
    expect(warn).not.toHaveBeenCalled();
  });

  it('publishes nothing to SNS without a topic', async () => {
    await notify(event({ topicArn: null }), deps());
    expect(snsMock.calls()).toHaveLength(0);
  });

  it('publishes the summary with the failed targets to the topic', async () => {
    const result = await notify(event({ topicArn: TOPIC }), deps());
    const subject = `AMI distribution PARTIAL: 1/2 targets (${SOURCE_IMAGE})`;
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(snsMock).toHaveReceivedCommandExactlyOnceWith(PublishCommand, {
      TopicArn: TOPIC,
      Subject: subject,
      Message: [
        'Status: PARTIAL',
        `Source image: ${SOURCE_IMAGE} (base-image-2026-11-29) in eu-west-1, account ${BUILDER}`,
        'Targets: 2 (1 succeeded, 1 failed)',
        '',
        'Failed targets:',
        `- ${ACCOUNT_B} eu-west-1: LaunchFailedError`,
        '',
        'Source share: revoked (no permission this run or an ended run added remains on the source image or its snapshots)',
        'Execution: exec-1',
        `Manifest: ${MANIFEST.uri}`,
      ].join('\n'),
    });
    expect(snsMock.commandCalls(PublishCommand).map((c) => Object.keys(c.args[0].input).sort())).toEqual([['Message', 'Subject', 'TopicArn']]);
    expect(result).toEqual({ eventId: EVENT_ID, messageId: MESSAGE_ID, truncated: false });
  });

  it("publishes in the topic's own region", async () => {
    await notify(event({ topicArn: `arn:aws:sns:us-east-1:${BUILDER}:ami-pipeline` }), deps());
    const client = snsMock.call(0).thisValue as SNSClient;
    expect(await client.config.region()).toBe('us-east-1');
  });

  it('turns a throttled entry into a retryable AwsThrottlingError and publishes nothing', async () => {
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] });
    const error = await rejection(notify(event({ topicArn: TOPIC }), deps()));
    expect(error.name).toBe('AwsThrottlingError');
    expect(error.retryable).toBe(true);
    expect(error.aws).toEqual({ code: 'ThrottlingException', message: 'Rate exceeded' });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it('turns any other refused entry into a terminal AwsRequestFailedError quoting EventBridge', async () => {
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' }] });
    const error = await rejection(notify(event(), deps()));
    expect(error.name).toBe('AwsRequestFailedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code: 'MalformedDetail', message: 'Detail is malformed.' });
    expect(error.message).toContain('exec-1');
    expect(error.message).toContain('MalformedDetail: Detail is malformed.');
  });

  it('names events:PutEvents when the pipeline role may not put events', async () => {
    ebMock
      .on(PutEventsCommand)
      .rejects(awsError('AccessDeniedException', `User: arn:aws:sts::${BUILDER}:assumed-role/ami-pipeline/notify is not authorized to perform: events:PutEvents`));
    const error = await rejection(notify(event({ topicArn: TOPIC }), deps()));
    expect(error.name).toBe('AccessDeniedError');
    expect(error.message).toContain('The pipeline role needs events:PutEvents on the default event bus in eu-west-1.');
    expect(snsMock.calls()).toHaveLength(0);
  });

  it.each([
    ['AuthorizationError', `User: arn:aws:sts::${BUILDER}:assumed-role/ami-pipeline/notify is not authorized to perform: SNS:Publish on resource: ${TOPIC}`],
    ['AccessDenied', 'Access Denied'],
  ])('names sns:Publish on the topic when SNS answers %s', async (code, message) => {
    snsMock.on(PublishCommand).rejects(awsError(code, message, 403));
    const error = await rejection(notify(event({ topicArn: TOPIC }), deps()));
    expect(['AccessDeniedError', 'AwsRequestFailedError']).toContain(error.name);
    if (code === 'AccessDenied') expect(error.name).toBe('AccessDeniedError');
    expect(error.retryable).toBe(false);
    expect(error.aws).toEqual({ code, message });
    expect(error.message).toContain(`The pipeline role needs sns:Publish on ${TOPIC}`);
  });

  it('turns SNS throttling into a retryable AwsThrottlingError', async () => {
    snsMock.on(PublishCommand).rejects(awsError('ThrottledException', 'Rate exceeded', 429));
    const error = await rejection(notify(event({ topicArn: TOPIC }), deps()));
    expect(error.name).toBe('AwsThrottlingError');
  });
});

describe('notify handler', () => {
  it.each([
    ['an unknown run status', { ...event(), manifest: { ...manifest(), status: 'DONE' } }, 'event.manifest.status'],
    ['failed targets that are not a list', { ...event(), manifest: { ...manifest(), failed: {} } }, 'event.manifest.failed'],
    ['a failed target without its account', { ...event(), manifest: { ...manifest(), failed: [{ region: 'eu-west-1', status: 'failed', error: null }] } }, 'event.manifest.failed.0.accountId'],
    ['a missing topicArn', { manifest: manifest() }, 'event.topicArn'],
    ['no payload at all', null, 'event.'],
  ])('rejects %s with InvalidInputError and makes no AWS call', async (_what, payload, field) => {
    const error = await rejection(handler(payload));
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain(field);
    expect(ebMock.calls()).toHaveLength(0);
    expect(snsMock.calls()).toHaveLength(0);
  });

  it('notifies through the default clients for a well-formed payload', async () => {
    const result = await handler(event({ topicArn: TOPIC }));
    expect(result).toEqual({ eventId: EVENT_ID, messageId: MESSAGE_ID, truncated: false });
    expect(ebMock).toHaveReceivedCommandTimes(PutEventsCommand, 1);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
  });
});
