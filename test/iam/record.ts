/**
 * Every AWS call the functions make, from runs of the real definitions over every path (first runs, re-runs,
 * a new source with retention, both launch-check modes, failed copies and launches, a redrive's retry, rekey, an encrypted source,
 * targets from SSM, a notification topic, an ExternalId), and what the CLI does inside a target account through the
 * target role (`ami-pipeline restore`, the doctor's per-region checks), each with the function that made it and the IAM
 * requests AWS evaluates for it (test/iam/requests.ts), worked out against the world as it was at the call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Tag } from '@aws-sdk/client-ec2';
import { FakeAws, type CallRecord } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B, BUILDER, item } from '../support/fixtures';
import { pipelineHandlers } from '../../bench/handlers';
import { loadDefinition, redriveExecution, runDefinition, type ExecutionRecord, type Json, type TaskHandler } from '../../local/asl';
import { LOCAL_STATE_MACHINE_ARN } from '../../local/executions';
import { historyOf } from '../support/sfn-events';
import { JANITOR_STATE_MACHINE_FN, REQUESTS, STATE_MACHINE_FN, type IamRequest, type RecordedCall, type World } from './requests';
import { sourceKeyPolicy } from './shipped';
import { ledgerTags } from '../../functions/shared/ledger';
import { PACKAGE_REGION, PACKAGE_STAGE } from '../support/package';
import { createClientFactory, type Clients } from '../../functions/shared/clients';
import { restoreCopy } from '../../functions/shared/restore';
import { allowedImagesCheck } from '../../cli/allowed-images';
import { recycleBinCheck } from '../../cli/recycle-bin';

export const EXTERNAL_ID = 'ami-pipeline-external-id';
export const TOPIC_ARN = `arn:aws:sns:eu-west-1:${BUILDER}:ami-pipeline`;

export interface Evaluable {
  call: RecordedCall;
  /** Undefined when the table has no entry for the call. */
  requests: IamRequest[] | undefined;
}

interface Scenario {
  name: string;
  setup?: (aws: FakeAws, source: string) => void;
  input?: Record<string, Json>;
  runs?: number;
  rekey?: boolean;
  /**
   * What the CLI then does inside target account A through the target role (its `fn` is `cli:<command>`). The CLI's
   * own calls in the builder account (AssumeRole) run as the operator's identity, which we do not ship: not recorded.
   */
  cli?: (ctx: { aws: FakeAws; target: Clients; as: <T>(command: string, run: () => Promise<T>) => Promise<T> }) => Promise<void>;
  /** Stop the (single) run while its targets verify, as StopExecution does, then run the janitor over it. */
  stopped?: boolean;
  /** After the (single) run failed: fix what failed, then redrive it (FailRun plans the retry, a new Map Run retries). */
  redrive?: (aws: FakeAws) => void;
}

const JANITOR = loadDefinition(new URL('../../statemachine/janitor.asl.yml', import.meta.url));

const SCENARIOS: Scenario[] = [
  {
    name: 're-runs, a new source, retention, publishing into a launch template',
    runs: 3,
    setup: (aws) => {
      aws.ebsEncryptionByDefault = true;
      aws.addUserTemplate(ACCOUNT_A, 'eu-west-1', 'web-servers', 'ami-00000000000000old');
    },
    input: { publish: { parameterName: '/ami-pipeline/base/latest', launchTemplates: ['web-servers'] } },
  },
  // Three runs over two sources with keep 1: the first source's copy leaves the kept set and is disabled (graceDays 7).
  { name: 'launch check with RunInstances, a copy disabled by retention', runs: 3, input: { verify: { mode: 'run-instances' }, retention: { keep: 1, graceDays: 7 } } },
  {
    name: 'a run after an interrupted one, whose share the ledger revokes',
    setup: (aws, source) => {
      const image = aws.images.get(source);
      image?.tags.push(...ledgerTags('interrupted', `arn:aws:states:eu-west-1:${BUILDER}:execution:encrypted-ami-pipeline-${PACKAGE_STAGE}:interrupted`, [ACCOUNT_A]));
      image?.launchPermission.add(ACCOUNT_A);
    },
  },
  {
    name: "ami-pipeline restore of a copy retention disabled, and the doctor's checks of a target region",
    runs: 3,
    input: { retention: { keep: 1, graceDays: 7 } },
    cli: async ({ aws, target, as }) => {
      const disabled = [...aws.images.values()].find((i) => i.account === ACCOUNT_A && i.state === 'disabled');
      if (!disabled) throw new Error('retention disabled no copy: the restore scenario lost its path');
      await as('restore', () => restoreCopy({ accountId: ACCOUNT_A, region: 'eu-west-1', imageId: disabled.id, parameterName: '/ami-pipeline/base/latest', protect: true }, target));
      await as('doctor', () => allowedImagesCheck(item(), target));
      await as('doctor', () => recycleBinCheck(item(), target));
    },
  },
  {
    name: 'a run stopped while its targets verify, and the janitor that cleans up after it',
    stopped: true,
    setup: (aws) => {
      aws.stuckLaunches.add(`${ACCOUNT_A}/eu-west-1`);
      aws.copyPolls = 0;
    },
  },
  { name: 'rekey', rekey: true },
  { name: 'a failed copy', setup: (aws) => aws.failingCopies.add(`${ACCOUNT_A}/eu-west-1`) },
  { name: 'a failed launch (Auto Scaling)', setup: (aws) => aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client.InternalError: Client error on launch') },
  {
    name: 'a failed launch, redriven once fixed',
    setup: (aws) => aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client.InternalError: Client error on launch'),
    redrive: (aws) => aws.failingLaunches.delete(`${ACCOUNT_A}/eu-west-1`),
  },
  { name: 'a failed launch (RunInstances)', setup: (aws) => aws.failingLaunches.set(`${ACCOUNT_A}/eu-west-1`, 'Client error on launch'), input: { verify: { mode: 'run-instances' } } },
  {
    name: "a source encrypted with the builder's key, targets from SSM, an SNS topic, an ExternalId",
    setup: (aws, source) => {
      const key = aws.addKey(BUILDER, 'eu-west-1', 'alias/builder-images');
      const image = aws.images.get(source);
      if (image) aws.encryptedSnapshots.set(image.snapshotId, key);
      aws.keyPolicies.set(key, JSON.stringify(sourceKeyPolicy(BUILDER, [ACCOUNT_A, ACCOUNT_B])));
      aws.parameters.set('/ami-pipeline/targets', JSON.stringify({ targets: [{ accountId: ACCOUNT_B, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] }));
    },
    input: { targets: null, targetsParameter: '/ami-pipeline/targets', externalId: EXTERNAL_ID, notify: { topicArn: TOPIC_ARN } },
  },
  {
    name: 'targets from an OU and its child OU, read by the builder account as a delegated administrator',
    setup: (aws) => {
      aws.organization.set('ou-ab12-11111111', { accounts: [{ Id: ACCOUNT_A, State: 'ACTIVE' }], ous: ['ou-ab12-22222222'] });
      aws.organization.set('ou-ab12-22222222', { accounts: [], ous: [] });
    },
    input: { targets: [{ organizationalUnitId: 'ou-ab12-11111111', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }] },
  },
];

/** The world the table reads, over a FakeAws and what the create calls said. */
function worldOf(aws: FakeAws): { world: World; remember: (call: CallRecord) => void } {
  const created = new Map<string, Record<string, string>>();
  const templates = new Map<string, { imageId: string; tags: Tag[] }>();
  const asMap = (tags: Tag[] | undefined) => Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  const world: World = {
    tagsOf(id) {
      const image = aws.images.get(id);
      if (image) return asMap(image.tags);
      const ofSnapshot = [...aws.images.values()].find((i) => i.snapshotId === id);
      if (ofSnapshot) return asMap(ofSnapshot.tags);
      const instance = aws.instances.get(id);
      if (instance) return asMap(instance.tags);
      return created.get(id) ?? {};
    },
    keyArn(ref, account, region) {
      if (ref.startsWith('arn:')) return ref;
      const key = [...aws.keys.values()].find((k) => k.account === account && k.region === region && (k.aliases.includes(ref) || k.arn.endsWith(`/${ref}`)));
      if (!key) throw new Error(`no key ${ref} in ${account}/${region}`);
      return key.arn;
    },
    image(id) {
      const image = aws.images.get(id);
      return image && { account: image.account, snapshotIds: [image.snapshotId], kmsKeyArn: aws.encryptedSnapshots.get(image.snapshotId) };
    },
    launchTemplate: (name) => templates.get(name),
    autoScalingRole: (account) => `arn:aws:iam::${account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
  };
  const remember = (call: CallRecord) => {
    const input = call.input;
    if (call.command === 'CreateLaunchTemplate') {
      const name = String(input.LaunchTemplateName);
      const data = input.LaunchTemplateData as { ImageId: string; TagSpecifications?: { ResourceType: string; Tags: Tag[] }[] };
      templates.set(name, { imageId: data.ImageId, tags: data.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? [] });
      created.set(name, asMap((input.TagSpecifications as { Tags: Tag[] }[] | undefined)?.[0]?.Tags));
    }
    if (call.command === 'CreateAutoScalingGroup') created.set(String(input.AutoScalingGroupName), asMap(input.Tags as Tag[]));
  };
  return { world, remember };
}

/** The deployed state machines (stage "test") by serverless.yml id: their names, and the `fn` their own calls are recorded as. */
const MACHINES: Record<string, { name: string; fn: string }> = {
  PipelineStateMachine: { name: `encrypted-ami-pipeline-${PACKAGE_STAGE}`, fn: STATE_MACHINE_FN },
  JanitorStateMachine: { name: `encrypted-ami-pipeline-janitor-${PACKAGE_STAGE}`, fn: JANITOR_STATE_MACHINE_FN },
};

/**
 * The Distributed Map's StartExecution of each child, which the local runner makes without the SDK: as the deployed
 * state machine (stage "test") makes it, with its own role (a Map Run's children are executions of the parent's machine).
 */
function childStarts(executions: ExecutionRecord[]): Evaluable[] {
  return executions
    .filter((e) => e.mapState !== undefined)
    .map((e) => {
      const machine = MACHINES[e.stateMachine];
      if (!machine) throw new Error(`no deployed state machine ${e.stateMachine}`);
      const call: RecordedCall = {
        fn: machine.fn,
        service: 'states',
        command: 'StartExecution',
        account: BUILDER,
        region: PACKAGE_REGION,
        input: { stateMachineArn: `arn:aws:states:${PACKAGE_REGION}:${BUILDER}:stateMachine:${machine.name}`, name: e.name },
      };
      return { call, requests: REQUESTS['states:StartExecution']?.(call, undefined as never) };
    });
}

/** Runs every scenario and returns each call with its IAM requests. */
export async function recordCalls(): Promise<Evaluable[]> {
  const out: Evaluable[] = [];
  const current = new AsyncLocalStorage<string>();
  for (const scenario of SCENARIOS) {
    const aws = new FakeAws();
    const { world, remember } = worldOf(aws);
    aws.hooks.beforeCall = (call) => {
      // Outside every function: the state machine's own calls (the Distributed Map reading and writing S3).
      const fn = current.getStore() ?? STATE_MACHINE_FN;
      if (fn.startsWith('cli:') && call.account === BUILDER) return;
      const recorded: RecordedCall = { ...call, fn };
      const entry = REQUESTS[`${call.service}:${call.command}`];
      // The requests are worked out before the call changes the world (a deleted resource's tags, say).
      out.push({ call: recorded, requests: entry?.(recorded, world) });
      remember(call);
    };
    try {
      aws.addKey(ACCOUNT_A, 'eu-west-1');
      aws.addKey(ACCOUNT_B, 'eu-west-1');
      const first = aws.addSourceImage('eu-west-1');
      scenario.setup?.(aws, first);
      const handlers = Object.fromEntries(
        Object.entries(pipelineHandlers()).map(([name, handler]): [string, TaskHandler] => [name, (event) => current.run(name, () => handler(event))]),
      );
      const input = (imageId: string): Json => {
        const base: Record<string, Json> = {
          source: { imageId, region: 'eu-west-1' },
          targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }],
          publish: { parameterName: '/ami-pipeline/base/latest' },
          retention: { keep: 1 },
          ...scenario.input,
        };
        return JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(base).filter(([, v]) => v !== null)))) as Json;
      };
      for (let i = 0; i < (scenario.runs ?? 1) && !scenario.stopped; i += 1) {
        const run = await runDefinition(input(i < 2 ? first : aws.addSourceImage('eu-west-1')), handlers, { executionName: `iam-${i}` });
        out.push(...childStarts(run.executions));
        if (scenario.redrive) {
          scenario.redrive(aws);
          out.push(...childStarts((await redriveExecution(run.executionArn, handlers)).executions));
        }
      }
      if (scenario.stopped) {
        const controller = new AbortController();
        const run = await runDefinition(input(first), handlers, {
          executionName: 'iam-stopped',
          signal: controller.signal,
          settleMs: 1_000,
          onEvent: (e) => {
            if (e.type === 'StateExited' && e.state?.name === 'StartLaunchCheck') controller.abort();
          },
        });
        // As deployed: an execution of the pipeline state machine, ABORTED (the janitor's reader checks the machine).
        const arn = `arn:aws:states:eu-west-1:${BUILDER}:execution:encrypted-ami-pipeline-${PACKAGE_STAGE}:iam-stopped`;
        aws.executions.set(arn, 'ABORTED');
        aws.executionDetails.set(arn, { stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: 'iam-stopped' });
        aws.histories.set(arn, historyOf(run.executions[0]?.events ?? []));
        // The janitor's own calls (its Distributed Map's ItemReader and ResultWriter) are made with its machine's role.
        const janitor = MACHINES.JanitorStateMachine as { name: string; fn: string };
        const cleaned = await current.run(janitor.fn, () =>
          runDefinition({ execution: { arn } }, handlers, {
            definition: JANITOR,
            executionName: 'iam-janitor',
            stateMachine: { id: 'JanitorStateMachine', name: janitor.name },
          }),
        );
        out.push(...childStarts(cleaned.executions));
      }
      if (scenario.rekey) {
        aws.addKey(ACCOUNT_A, 'eu-west-1', 'alias/ami-encryption-2');
        const rekey = {
          mode: 'rekey',
          targets: [{ accountId: ACCOUNT_A, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption-2' }],
          publish: { parameterName: '/ami-pipeline/base/latest' },
        };
        out.push(...childStarts((await runDefinition(rekey, handlers, { executionName: 'iam-rekey' })).executions));
      }
      if (scenario.cli) {
        const target = createClientFactory('eu-west-1').target({ accountId: ACCOUNT_A, roleName: 'AmiPipelineTarget', sessionName: 'ami-pipeline-cli' });
        await scenario.cli({ aws, target, as: (command, run) => current.run(`cli:${command}`, run) });
      }
    } finally {
      aws.restore();
    }
  }
  return out;
}
