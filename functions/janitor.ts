/**
 * States: ReadStoppedRun, SummarizeCleanup. Serverless function: janitor.
 * ReadStoppedRun, the first state of the janitor (statemachine/janitor.asl.yml): a run of the pipeline that was
 * stopped, timed out or failed outside its own Catch ran none of its cleanup. Given that execution (from the
 * `Step Functions Execution Status Change` event, started by functions/start-execution.ts), this reads from Step
 * Functions what the run had made: DescribeExecution for its status and error, GetExecutionHistory for ResolveSource's
 * output (the resolved source, the settings, where the targets are: the run's targets file in the runs bucket, which
 * the janitor's Distributed Map reads) and whether the run reached NotifyCompletion or NotifyRunError itself (then it
 * cleaned up and announced itself: nothing left to do).
 * SummarizeCleanup, after that Map: reads its results (ResultWriter's files) and returns the cleanup's summary, whose
 * size does not grow past MAX_LISTED targets whatever the number of targets.
 * Takes { execution: { arn } } or { action: 'summarize', mapRun }; returns the StoppedRun the janitor's next states use,
 * or the CleanupSummary (docs/janitor.md).
 * Throws InvalidInputError (a malformed event), AccessDeniedError, AwsRequestFailedError (terminal) or the retryable
 * throttling/5xx errors.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, paginateGetExecutionHistory, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws } from './shared/errors';
import { lambdaHandler } from './shared/handler';
import { causeMessage, parseJson } from './shared/json';
import { childTarget } from './shared/manifest';
import { logger } from './shared/logger';
import { parsePayload, resolvedSourceSchema, settingsSchema, type ResolvedSource, type Settings } from './shared/plan';
import { readMapRunResults, s3RunStore, s3Uri, type RunStore } from './shared/run-store';
import { regionOfExecutionArn } from './shared/executions';
import { STOPPED_STATUSES } from './shared/janitor';
import { notCleanedUpSchema, type CleanupSummary, type NotCleanedUp } from './shared/manifest-schema';

export const janitorEventSchema = z.object({
  execution: z.object({ arn: z.string().min(1) }),
});
export type JanitorEvent = z.infer<typeof janitorEventSchema>;

/** The run's own states that announce its end: past them it had cleaned up itself. */
export const ANNOUNCING_STATES = ['NotifyCompletion', 'NotifyRunError'] as const;

export interface StoppedRun {
  /** False: nothing for the janitor to do (see reason). */
  cleanUp: boolean;
  /** Also send the completion event (the run did not). */
  announce: boolean;
  reason: string;
  executionName: string;
  executionArn: string;
  /** Step Functions' status of the execution. */
  status: string;
  error: { name: string; message: string } | null;
  source: ResolvedSource | null;
  shareAccountIds: string[];
  settings: Settings | null;
  /**
   * Where the run's targets are (the janitor's Map reads them) and where the cleanup's results go (`runs/<execution>/janitor`);
   * null when there is nothing to clean up.
   */
  files: { bucket: string; targetsKey: string; cleanupPrefix: string } | null;
  targetCount: number;
  topicArn: string | null;
}

/** What the janitor needs of ResolveSource's output (functions/shared/plan.ts RunPlan). */
const runPlanSchema = z.looseObject({
  skipped: z.boolean().optional(),
  source: resolvedSourceSchema.nullable(),
  shareAccountIds: z.array(z.string()).default([]),
  /** Where ResolveSource wrote the run's targets (the Distributed Map's items) in the runs bucket. */
  files: z.looseObject({ bucket: z.string().min(1), prefix: z.string().min(1), targetsKey: z.string().min(1) }),
  targetCount: z.number().int().nonnegative(),
  settings: settingsSchema,
  notify: z.looseObject({ topicArn: z.string().nullable() }).optional(),
});

export interface JanitorDeps {
  sfn(region: string): SFNClient;
  /** The pipeline's state machine: executions of any other (the janitor itself) are left alone. */
  pipelineStateMachineArn: string;
  /** The runs bucket, where the cleanup's results are. */
  store: RunStore;
}

export function createJanitorDeps(clients: ClientFactory = clientFactory({ sfn: SFNClient, s3: S3Client })): JanitorDeps {
  return {
    sfn: (region) => clients.builder().sfn(region),
    pipelineStateMachineArn: process.env.PIPELINE_STATE_MACHINE_ARN ?? '',
    store: s3RunStore(() => clients.builder().s3(process.env.AWS_REGION ?? 'us-east-1')),
  };
}
export const defaultDeps: JanitorDeps = createJanitorDeps();

const nameOf = (arn: string) => arn.split(':').at(-1) ?? arn;

/** The execution's error; a Lambda error's message read out of its JSON cause. */
function errorOf(error: string | undefined, cause: string | undefined): { name: string; message: string } | null {
  if (!error && !cause) return null;
  return { name: error ?? 'Error', message: causeMessage(cause ?? '') };
}

export async function readStoppedRun(event: JanitorEvent, deps: JanitorDeps = defaultDeps): Promise<StoppedRun> {
  const executionArn = event.execution.arn;
  const base: StoppedRun = {
    cleanUp: false,
    announce: false,
    reason: '',
    executionName: nameOf(executionArn),
    executionArn,
    status: 'UNKNOWN',
    error: null,
    source: null,
    shareAccountIds: [],
    settings: null,
    files: null,
    targetCount: 0,
    topicArn: null,
  };
  const region = regionOfExecutionArn(executionArn);
  if (!region) return { ...base, reason: `${executionArn} is not an execution ARN of a state machine` };
  const sfn = deps.sfn(region);
  const described = await aws(
    `Describing execution ${executionArn}`,
    () => sfn.send(new DescribeExecutionCommand({ executionArn })),
    'The janitor role needs states:DescribeExecution on the pipeline state machine\'s executions.',
  );
  const status = described.status ?? 'UNKNOWN';
  const stopped = { ...base, executionName: described.name ?? base.executionName, status, error: errorOf(described.error, described.cause) };
  if (described.stateMachineArn !== deps.pipelineStateMachineArn) {
    return { ...stopped, reason: `execution of ${described.stateMachineArn ?? 'another state machine'}, not of the pipeline: left alone` };
  }
  if (described.mapRunArn) return { ...stopped, reason: `a child execution of Map Run ${described.mapRunArn}: its run cleans it up` };
  if (!(STOPPED_STATUSES as readonly string[]).includes(status)) {
    return { ...stopped, reason: `status ${status}: ${status === 'SUCCEEDED' ? 'the run cleaned up itself' : 'still running (redriven?)'}` };
  }

  let planOutput: string | undefined;
  let announced: string | undefined;
  const pages = paginateGetExecutionHistory({ client: sfn }, { executionArn, includeExecutionData: true, maxResults: 1000 });
  await aws(
    `Reading the history of ${executionArn}`,
    async () => {
      for await (const page of pages) {
        for (const e of page.events ?? []) {
          // A redrive goes on after the run announced itself: only an announcement after the last redrive counts.
          if (e.type === 'ExecutionRedriven') announced = undefined;
          const exited = exitOf(e);
          if (!exited) continue;
          if (exited.name === 'ResolveSource' && planOutput === undefined) planOutput = exited.output;
          if ((ANNOUNCING_STATES as readonly string[]).includes(exited.name)) announced = exited.name;
        }
      }
    },
    'The janitor role needs states:GetExecutionHistory on the pipeline state machine\'s executions.',
  );
  if (announced) return { ...stopped, reason: `the run reached ${announced}: it cleaned up and announced itself` };
  if (planOutput === undefined) return { ...stopped, announce: true, reason: 'the run stopped before ResolveSource ended: it shared and made nothing' };
  const plan = runPlanSchema.safeParse(parseJson(planOutput));
  if (!plan.success) {
    logger.warn('ResolveSource output not understood', { issues: plan.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) });
    return { ...stopped, announce: true, reason: 'the output of ResolveSource could not be read; run ami-pipeline cleanup --input with the run\'s input' };
  }
  const { source, shareAccountIds, files, settings, skipped, notify, targetCount } = plan.data;
  if (skipped) return { ...stopped, announce: true, reason: 'the run had nothing to do (source not opted in, or no target)' };
  return {
    ...stopped,
    cleanUp: true,
    announce: true,
    reason: `the run ended ${status} without its own cleanup`,
    source,
    shareAccountIds,
    settings,
    files: { bucket: files.bucket, targetsKey: files.targetsKey, cleanupPrefix: `${files.prefix}/janitor` },
    targetCount,
    topicArn: notify?.topicArn ?? null,
  };
}

/** At most this many targets not cleaned up are listed in the summary (the completion event); the rest are counted. */
export const MAX_LISTED = 50;

export const summarizeEventSchema = z.object({
  action: z.literal('summarize'),
  mapRun: z.looseObject({
    MapRunArn: z.string().optional(),
    ResultWriterDetails: z.object({ Bucket: z.string().min(1), Key: z.string().min(1) }),
  }),
});
export type SummarizeEvent = z.infer<typeof summarizeEventSchema>;

/** One target the cleanup could not finish (CleanupFailed's cause, or Step Functions' error for a child that ended otherwise); the summary's schema is the run summary's. */
export type { CleanupSummary, NotCleanedUp };

/** A cleaned-up target's output (TargetCleanedUp): CleanUpLaunchCheck's CleanupResult and FindTargetCopy's answer. */
const cleanedSchema = z.looseObject({
  launchCheck: z.looseObject({ autoScalingGroupDeleted: z.boolean(), launchTemplateDeleted: z.boolean(), terminatedInstanceIds: z.array(z.string()) }),
  copy: z.looseObject({ deregistered: z.boolean().optional() }).nullable(),
});

/** Whether the launch-check cleanup removed anything (a test group, its template or an instance). */
const removedSomething = (r: z.infer<typeof cleanedSchema>['launchCheck']): boolean =>
  r.autoScalingGroupDeleted || r.launchTemplateDeleted || r.terminatedInstanceIds.length > 0;

export async function summarizeCleanup(event: SummarizeEvent, deps: Pick<JanitorDeps, 'store'> = defaultDeps): Promise<CleanupSummary> {
  const { Bucket, Key } = event.mapRun.ResultWriterDetails;
  const { children, mapRunArn } = await readMapRunResults(event.mapRun, deps.store);
  const summary: CleanupSummary = {
    targets: children.length,
    cleanedUp: 0,
    notCleanedUp: 0,
    launchChecksRemoved: 0,
    copiesDeregistered: 0,
    failed: [],
    mapRunArn,
    results: s3Uri(Bucket, Key),
  };
  for (const child of children) {
    const output = child.Status === 'SUCCEEDED' ? cleanedSchema.safeParse(parseJson(child.Output)) : undefined;
    if (output?.success) {
      summary.cleanedUp += 1;
      if (removedSomething(output.data.launchCheck)) summary.launchChecksRemoved += 1;
      if (output.data.copy?.deregistered === true) summary.copiesDeregistered += 1;
      continue;
    }
    summary.notCleanedUp += 1;
    if (summary.failed.length < MAX_LISTED) summary.failed.push(notCleanedUp(child));
  }
  logger.info('Cleanup summarized', { ...summary, failed: summary.failed.length });
  return summary;
}

/** CleanupFailed's cause is the target's line; a child that timed out or was stopped says only what Step Functions says. */
function notCleanedUp(child: { Input?: string; Error?: string; Cause?: string; Status?: string }): NotCleanedUp {
  const line = notCleanedUpSchema.safeParse(parseJson(child.Cause));
  if (line.success) return line.data;
  const { accountId, region } = childTarget(child);
  return {
    accountId,
    region,
    error: { name: child.Error ?? child.Status ?? 'Unknown', message: child.Cause ?? `the child execution ended ${child.Status ?? 'without a status'}` },
  };
}

function exitOf(e: HistoryEvent): { name: string; output: string | undefined } | undefined {
  const d = e.stateExitedEventDetails;
  return d?.name ? { name: d.name, output: d.output } : undefined;
}

/** ReadStoppedRun's event, or SummarizeCleanup's (action summarize). */
export async function janitor(event: unknown, deps: JanitorDeps = defaultDeps): Promise<StoppedRun | CleanupSummary> {
  return (event as { action?: unknown } | null)?.action === 'summarize'
    ? summarizeCleanup(parsePayload(summarizeEventSchema, event, 'event'), deps)
    : readStoppedRun(parsePayload(janitorEventSchema, event, 'event'), deps);
}

export const makeHandler = (deps: JanitorDeps = defaultDeps) =>
  lambdaHandler(
    'Janitor',
    (event) => {
      const arn = (event as { execution?: { arn?: unknown } } | null)?.execution?.arn;
      return { executionName: typeof arn === 'string' ? nameOf(arn) : undefined };
    },
    (event) => janitor(event, deps),
  );

export const handler = makeHandler();
