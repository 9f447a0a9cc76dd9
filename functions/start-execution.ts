/**
 * States: none (EventBridge rules invoke it). Serverless function: startExecution.
 * StartExecution for the builder account's rules (serverless.yml): each execution gets a name derived from what
 * triggered it, so a trigger delivered twice starts one execution. Step Functions refuses a second StartExecution
 * of a name used in the last 90 days (ExecutionAlreadyExists), or answers it with the same execution while it runs
 * with the same input (docs/concurrent-runs.md cites the API reference).
 * - `Scheduled Event` (the nightly schedule): the pipeline over the newest opted-in image, named after the scheduled
 *   time (`nightly-20261130T0200Z`).
 * - `EC2 AMI State Change` to available: the pipeline over that image, named after it (`new-image-<region>-<imageId>`).
 * - `Step Functions Execution Status Change` of a pipeline execution that ended ABORTED, TIMED_OUT or FAILED: the
 *   janitor (statemachine/janitor.asl.yml), named after that execution; other statuses and state machines are ignored.
 * Takes the EventBridge event; returns { started, stateMachine, name, executionArn, reason }.
 * Throws InvalidInputError (an event it does not handle), AccessDeniedError, AwsRequestFailedError (terminal) or the
 * retryable throttling/5xx errors.
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, InvalidInputError } from './shared/errors';
import { lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { digest } from './shared/tags';
import { STOPPED_STATUSES } from './shared/janitor';

const scheduledSchema = z.looseObject({ source: z.literal('aws.events'), 'detail-type': z.literal('Scheduled Event'), time: z.string() });
const newImageSchema = z.looseObject({
  source: z.literal('aws.ec2'),
  'detail-type': z.literal('EC2 AMI State Change'),
  region: z.string(),
  detail: z.looseObject({ ImageId: z.string(), State: z.string() }),
});
const statusChangeSchema = z.looseObject({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.looseObject({ executionArn: z.string(), stateMachineArn: z.string(), name: z.string(), status: z.string() }),
});

export interface StarterSettings {
  pipelineStateMachineArn: string;
  janitorStateMachineArn: string;
  /** The pipeline's region: the nightly run looks for its source here. */
  region: string;
  optInTagKey: string;
  optInTagValue: string;
  targetsParameter: string;
}

export interface StarterDeps {
  sfn(region: string): SFNClient;
  settings: StarterSettings;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): StarterSettings {
  return {
    pipelineStateMachineArn: env.PIPELINE_STATE_MACHINE_ARN ?? '',
    janitorStateMachineArn: env.JANITOR_STATE_MACHINE_ARN ?? '',
    region: env.AWS_REGION ?? 'us-east-1',
    optInTagKey: env.OPT_IN_TAG_KEY ?? 'ami-pipeline:distribute',
    optInTagValue: env.OPT_IN_TAG_VALUE ?? 'true',
    targetsParameter: env.TARGETS_PARAMETER ?? '/ami-pipeline/targets',
  };
}

export function createStarterDeps(clients: ClientFactory = clientFactory({ sfn: SFNClient })): StarterDeps {
  return { sfn: (region) => clients.builder().sfn(region), settings: settingsFromEnv() };
}
export const defaultDeps: StarterDeps = createStarterDeps();

export interface Start {
  stateMachineArn: string;
  name: string;
  input: unknown;
}

export interface StartResult {
  started: boolean;
  stateMachineArn: string | null;
  name: string | null;
  executionArn: string | null;
  reason: string;
}

/** Execution names: at most 80 characters of letters, digits, - and _ (what CloudWatch Logs also accepts). */
export const MAX_NAME_LENGTH = 80;
const clean = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '-');

/** The execution an event asks for, or why it asks for none. */
export function startFor(event: unknown, settings: StarterSettings): Start | { ignore: string } {
  const scheduled = scheduledSchema.safeParse(event);
  if (scheduled.success) {
    // "2026-11-30T02:00:00Z" -> "20261130T0200Z": one name per scheduled minute.
    const at = new Date(scheduled.data.time);
    if (Number.isNaN(at.getTime())) throw new InvalidInputError([`time: "${scheduled.data.time}" is not a timestamp`]);
    const stamp = at.toISOString().slice(0, 16).replace(/[-:]/g, '');
    return {
      stateMachineArn: settings.pipelineStateMachineArn,
      name: `nightly-${stamp}Z`,
      input: {
        source: { filter: { tags: { [settings.optInTagKey]: settings.optInTagValue } }, region: settings.region },
        targetsParameter: settings.targetsParameter,
      },
    };
  }
  const image = newImageSchema.safeParse(event);
  if (image.success) {
    const { ImageId, State } = image.data.detail;
    if (State !== 'available') return { ignore: `image ${ImageId} is ${State}, not available` };
    return {
      stateMachineArn: settings.pipelineStateMachineArn,
      name: clean(`new-image-${image.data.region}-${ImageId}`).slice(0, MAX_NAME_LENGTH),
      input: {
        source: { imageId: ImageId, region: image.data.region, optInTag: { key: settings.optInTagKey, value: settings.optInTagValue } },
        targetsParameter: settings.targetsParameter,
      },
    };
  }
  const change = statusChangeSchema.safeParse(event);
  if (change.success) {
    const { executionArn, stateMachineArn, name, status } = change.data.detail;
    if (stateMachineArn !== settings.pipelineStateMachineArn) return { ignore: `${executionArn} is not an execution of the pipeline state machine` };
    if (!(STOPPED_STATUSES as readonly string[]).includes(status)) return { ignore: `${executionArn} is ${status}: nothing for the janitor` };
    return {
      stateMachineArn: settings.janitorStateMachineArn,
      // One janitor per execution: the digest tells apart names cut to fit.
      name: `janitor-${clean(name).slice(0, 50)}-${digest(executionArn).slice(0, 16)}`,
      input: { execution: { arn: executionArn } },
    };
  }
  throw new InvalidInputError([
    'event: not a Scheduled Event, an EC2 AMI State Change or a Step Functions Execution Status Change; check the rule that targets this function',
  ]);
}

export async function startExecution(event: unknown, deps: StarterDeps = defaultDeps): Promise<StartResult> {
  const start = startFor(event, deps.settings);
  if ('ignore' in start) {
    logger.info('Event ignored', { reason: start.ignore });
    return { started: false, stateMachineArn: null, name: null, executionArn: null, reason: start.ignore };
  }
  const region = start.stateMachineArn.split(':')[3] ?? deps.settings.region;
  const executionArn = `${start.stateMachineArn.replace(':stateMachine:', ':execution:')}:${start.name}`;
  // The same trigger delivered again: its execution exists (running with another input, or already ended).
  const started = await aws(
    `Starting ${start.name} of ${start.stateMachineArn}`,
    async () =>
      (await deps.sfn(region).send(new StartExecutionCommand({ stateMachineArn: start.stateMachineArn, name: start.name, input: JSON.stringify(start.input) })))
        .executionArn ?? executionArn,
    { fix: 'The starter role needs states:StartExecution on the pipeline and janitor state machines.', on: { ExecutionAlreadyExists: () => null } },
  );
  if (started === null) {
    logger.info('Execution already started', { name: start.name });
    return { started: false, stateMachineArn: start.stateMachineArn, name: start.name, executionArn, reason: 'an execution of this name exists: the trigger was delivered before' };
  }
  logger.info('Execution started', { name: start.name, executionArn: started });
  return { started: true, stateMachineArn: start.stateMachineArn, name: start.name, executionArn: started, reason: 'started' };
}

export const makeHandler = (deps: StarterDeps = defaultDeps) =>
  lambdaHandler('StartExecution', () => ({}), (event) => startExecution(event, deps));

export const handler = makeHandler();
