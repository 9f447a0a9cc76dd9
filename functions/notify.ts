/**
 * States: NotifyCompletion, NotifyRunError. Serverless function: notify.
 * NotifyCompletion: runs once at the end of a run, in the builder account. Puts the run's summary (counts, the first
 * failed targets and the S3 location of the full manifest) on the default event bus ("AMI Distribution Completed" or
 * "AMI Distribution Failed"; trimmed to the failed targets, then to the counts, when it exceeds an entry's 256 KB) and,
 * when a topic is given, publishes a readable summary to it.
 * Takes { manifest, topicArn }; returns { eventId, messageId, truncated }.
 * Throws InvalidInputError, AccessDeniedError, AwsRequestFailedError (terminal) or the retryable throttling/5xx errors.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, toPipelineError } from './shared/errors';
import { lambdaHandler } from './shared/handler';
import { causeMessage } from './shared/json';
import { logger } from './shared/logger';
import { runSummarySchema, type CompletionDetail, type RunSummary } from './shared/manifest-schema';
import { parsePayload } from './shared/plan';

export const notifyEventSchema = z.object({
  /** The run's summary (every target's full line is in the manifest in S3). */
  manifest: runSummarySchema,
  topicArn: z.string().min(1).nullable(),
});
export type NotifyEvent = z.infer<typeof notifyEventSchema>;

export interface NotifyResult {
  eventId: string | null;
  messageId: string | null;
  /** True when the event carries a trimmed summary (the full one is the execution's output or cause). */
  truncated: boolean;
}

export interface NotifyDeps {
  eventBridge(region: string): EventBridgeClient;
  sns(region: string): SNSClient;
  /** The pipeline's own region: its default bus receives the event. */
  region: string;
}

/** Builder-account clients (the function's own role) from the shared factory, memoised per service and region. */
export function createNotifyDeps(region = process.env.AWS_REGION ?? 'us-east-1', clients: ClientFactory = clientFactory({ eventBridge: EventBridgeClient, sns: SNSClient })): NotifyDeps {
  return { region, eventBridge: (r) => clients.builder().eventBridge(r), sns: (r) => clients.builder().sns(r) };
}
export const defaultDeps: NotifyDeps = createNotifyDeps();

export const EVENT_SOURCE = 'encrypted-ami-pipeline';
/**
 * An entry may hold 256 KB: Source, DetailType and Detail in UTF-8. The API reference also counts "necessary
 * characters and keys of the JSON representation", so a little room is kept for those.
 */
const MAX_ENTRY_BYTES = 256 * 1024 - 1024;
/** SNS caps a message at 256 KB (UTF-8). */
const MAX_MESSAGE_BYTES = 256 * 1024 - 1024;
/** SNS subjects: ASCII, no line breaks or control characters, at most 100 characters. */
const MAX_SUBJECT_CHARS = 100;
/** The longest line one failed target gets in the SNS message (its full line is in the manifest). */
const MAX_FAILURE_LINE_CHARS = 1000;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export function detailType(status: RunSummary['status']): string {
  return status === 'SUCCEEDED' ? 'AMI Distribution Completed' : 'AMI Distribution Failed';
}

function counts(manifest: RunSummary) {
  return manifest.counts ?? { targets: 0, succeeded: 0, failed: 0 };
}

interface FittedDetail {
  detail: string;
  truncated: boolean;
  kept: 'manifest' | 'failed targets' | 'counts';
  manifestBytes: number;
}

/**
 * The event's detail: the manifest itself, or, past an entry's 256 KB, `truncated: true` with the counts, the source,
 * the source share and only the failed targets (and, if that is still too large, only the counts).
 */
function fitDetail(manifest: RunSummary): FittedDetail {
  const room = MAX_ENTRY_BYTES - bytes(EVENT_SOURCE) - bytes(detailType(manifest.status));
  const full = JSON.stringify(manifest);
  const manifestBytes = bytes(full);
  if (manifestBytes <= room) return { detail: full, truncated: false, kept: 'manifest', manifestBytes };
  const head: CompletionDetail = { status: manifest.status, executionName: manifest.executionName, truncated: true, counts: counts(manifest), manifest: manifest.manifest };
  const withFailed: CompletionDetail = { ...head, source: manifest.source, sourceShare: manifest.sourceShare, failed: manifest.failed };
  const failedOnly = JSON.stringify(withFailed);
  if (bytes(failedOnly) <= room) return { detail: failedOnly, truncated: true, kept: 'failed targets', manifestBytes };
  return { detail: JSON.stringify(head), truncated: true, kept: 'counts', manifestBytes };
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

/**
 * A recorded error as one line: `{ name, message }` (a target's or the run's), or a Catch's `{ Error, Cause }`
 * (`sourceShare.error`), whose Cause for a Lambda error is JSON holding the errorMessage.
 */
function errorText(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { name?: unknown; message?: unknown; Error?: unknown; Cause?: unknown };
  const name = typeof e.name === 'string' ? e.name : typeof e.Error === 'string' ? e.Error : null;
  if (name === null) return null;
  const text = causeMessage(typeof e.message === 'string' ? e.message : typeof e.Cause === 'string' ? e.Cause : '');
  return text ? `${name}: ${oneLine(text)}` : name;
}

/** What stays shared on the image, and why (the share ledger's `left`). */
function leftNote(sourceShare: RunSummary['sourceShare']): string {
  const left = (sourceShare?.left ?? []).filter((l) => l.resourceId.startsWith('ami-'));
  if (left.length === 0) return '';
  const parts = left.slice(0, 10).map((l) => `${l.accountId} (${l.reason === 'shared-by-hand' ? 'shared by hand' : `execution ${l.executionName ?? '?'}`})`);
  return `; still shared with ${parts.join(', ')}${left.length > 10 ? ` and ${left.length - 10} more` : ''}`;
}

/** The SNS subject and the multi-line message a person reads. */
export function summary(manifest: RunSummary): { subject: string; message: string } {
  const c = counts(manifest);
  const { source, sourceShare } = manifest;
  const rawSubject = `AMI distribution ${manifest.status}: ${c.succeeded}/${c.targets} targets (${source?.imageId ?? 'no source'})`;
  const subject = clip(rawSubject.replace(/[^\x20-\x7E]/g, '?'), MAX_SUBJECT_CHARS);

  const runError = errorText(manifest.error);
  const head = [
    `Status: ${manifest.status}`,
    ...(runError ? [`Error: ${clip(runError, MAX_FAILURE_LINE_CHARS)}`] : []),
    source
      ? `Source image: ${source.imageId}${source.name ? ` (${source.name})` : ''} in ${source.region}, account ${source.accountId}`
      : 'Source image: not resolved',
    `Targets: ${c.targets} (${c.succeeded} succeeded, ${c.failed} failed)`,
  ];
  const shareError = errorText(sourceShare?.error);
  const tail = [
    sourceShare === null
      ? 'Source share: the run stopped before its targets; anything it had shared was revoked on the way out'
      : sourceShare.revoked
        ? `Source share: revoked (no permission this run or an ended run added remains on the source image or its snapshots)${leftNote(sourceShare)}`
        : `Source share: NOT revoked, the source image may still be shared with the target accounts${shareError ? ` (${shareError})` : ''}`,
    `Execution: ${manifest.executionName}`,
    ...(manifest.manifest ? [`Manifest: ${manifest.manifest.uri}`] : []),
  ];

  const failed = manifest.failed;
  const failureLines: string[] = [];
  if (failed.length > 0) {
    let room = MAX_MESSAGE_BYTES - bytes([...head, '', 'Failed targets:', '', ...tail].join('\n')) - 200;
    for (const [n, r] of failed.entries()) {
      const where = `${r.accountId ?? '?'} ${r.region ?? '?'}`;
      const line = clip(`- ${where}: ${r.error ?? 'no error recorded'}`, MAX_FAILURE_LINE_CHARS);
      if (bytes(line) + 1 > room) {
        failureLines.push(`- ... and ${c.failed - n} more (see the manifest)`);
        break;
      }
      failureLines.push(line);
      room -= bytes(line) + 1;
    }
    if (c.failed > failed.length && failureLines.length === failed.length) failureLines.push(`- ... and ${c.failed - failed.length} more (see the manifest)`);
  }

  const message = [...head, '', ...(failureLines.length > 0 ? ['Failed targets:', ...failureLines, ''] : []), ...tail].join('\n');
  return { subject, message };
}

/** SNS Publish must be sent in the topic's own region: arn:partition:sns:region:account:name. */
function topicRegion(topicArn: string, fallback: string): string {
  return topicArn.split(':')[3] || fallback;
}

export async function notify(event: NotifyEvent, deps: NotifyDeps = defaultDeps): Promise<NotifyResult> {
  const { manifest, topicArn } = event;
  const fitted = fitDetail(manifest);
  if (fitted.truncated) {
    logger.warn('Event detail truncated', {
      manifestBytes: fitted.manifestBytes,
      detailBytes: bytes(fitted.detail),
      kept: fitted.kept,
    });
  }

  const action = `Sending the completion event of ${manifest.executionName} to the default bus in ${deps.region}`;
  const putEventsFix = `The pipeline role needs events:PutEvents on the default event bus in ${deps.region}.`;
  const out = await aws(
    action,
    () =>
      deps.eventBridge(deps.region).send(
        new PutEventsCommand({
          Entries: [
            {
              Source: EVENT_SOURCE,
              DetailType: detailType(manifest.status),
              Detail: fitted.detail,
              EventBusName: 'default',
            },
          ],
        }),
      ),
    putEventsFix,
  );
  // PutEvents answers 200 even when it refuses an entry; the refusal is in the entry.
  const entry = out.Entries?.[0];
  if ((out.FailedEntryCount ?? 0) > 0 || entry?.ErrorCode) {
    const refusal = Object.assign(new Error(entry?.ErrorMessage ?? 'PutEvents refused the entry'), {
      name: entry?.ErrorCode ?? 'Unknown',
    });
    throw toPipelineError(refusal, action, putEventsFix);
  }
  const eventId = entry?.EventId ?? null;
  logger.info('Completion event sent', { eventId, status: manifest.status, truncated: fitted.truncated });

  let messageId: string | null = null;
  if (topicArn !== null) {
    const { subject, message } = summary(manifest);
    const region = topicRegion(topicArn, deps.region);
    const published = await aws(
      `Publishing the summary of ${manifest.executionName} to ${topicArn}`,
      () => deps.sns(region).send(new PublishCommand({ TopicArn: topicArn, Subject: subject, Message: message })),
      `The pipeline role needs sns:Publish on ${topicArn} (and kms:GenerateDataKey and kms:Decrypt on its key when the topic is encrypted).`,
    );
    messageId = published.MessageId ?? null;
    logger.info('Summary published', { topicArn, messageId });
  }

  return { eventId, messageId, truncated: fitted.truncated };
}

export const makeHandler = (deps: NotifyDeps = defaultDeps) =>
  lambdaHandler(
    'NotifyCompletion',
    (event) => {
      const e = event as { manifest?: { executionName?: unknown } | null } | null;
      const name = e?.manifest?.executionName;
      return { executionName: typeof name === 'string' ? name : undefined };
    },
    (event) => notify(parsePayload(notifyEventSchema, event, 'event'), deps),
  );

export const handler = makeHandler();
