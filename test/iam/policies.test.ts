/**
 * The IAM we ship, evaluated, not grepped: every AWS call the functions make on every path (test/iam/record.ts)
 * is turned into the IAM requests AWS evaluates (test/iam/requests.ts: one entry per `service:Command`, with the
 * resource ARN and the request context) and evaluated with @cloud-copilot/iam-simulate against the policies we
 * ship (test/iam/shipped.ts): the builder's roles from the packaged stack, the target role, its trust policy and
 * the target key's policy from templates/target-account.yml, the source key's policy as the README says.
 * Cross-account requests (the target role using the builder's key, the builder assuming the target role) must be
 * allowed on both sides. Then a table of calls that must be denied.
 *
 * When you add an AWS call to a function: add its entry to REQUESTS (how AWS authorizes it), then the permission
 * to the role; the failure message names the function, the call, the request and the policies evaluated.
 * @cloud-copilot/iam-simulate is AGPL-3.0: it is imported here, under test/, and nowhere else.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_A, ACCOUNT_B, BUILDER, item, KEY_A_EU } from '../support/fixtures';
import { runCalls } from '../../cli/permissions';
import { RUNS_BUCKET } from '../../bench/handlers';
import { recordCalls, EXTERNAL_ID, type Evaluable } from './record';
import { JANITOR_STATE_MACHINE_FN, ORG_ID as OU_ORG_ID, ORG_MANAGEMENT, STATE_MACHINE_FN, type IamRequest, type RecordedCall } from './requests';
import { builderRoles, organizationDelegationPolicy, organizationReader, sourceKeyPolicy, targetAccount, TARGET_ACCESS_ROLE, type NamedPolicy, type PolicyDocument, type TargetDeployment } from './shipped';

const ORG_ID = 'o-abcdefghij';
const TARGET_ROLE = 'AmiPipelineTarget';

let calls: Evaluable[];
let builder: ReturnType<typeof builderRoles>;
let targets: Record<string, TargetDeployment>;

beforeAll(async () => {
  builder = builderRoles(BUILDER);
  // Account A with the template's defaults; account B with an ExternalId and an organization.
  targets = {
    [ACCOUNT_A]: targetAccount(ACCOUNT_A, BUILDER, { RoleRegion: 'eu-west-1' }),
    [ACCOUNT_B]: targetAccount(ACCOUNT_B, BUILDER, { RoleRegion: 'eu-west-1', ExternalId: EXTERNAL_ID, OrganizationId: ORG_ID }),
  };
  calls = await recordCalls();
}, 240_000);

interface Caller {
  /** The session principal making the request. */
  principal: string;
  roleArn: string;
  roleName: string;
  policies: NamedPolicy[];
}

function callerOf(call: Pick<RecordedCall, 'fn' | 'account'>): Caller {
  const machineRole = { [STATE_MACHINE_FN]: 'PipelineStateMachineExecutionRole', [JANITOR_STATE_MACHINE_FN]: 'JanitorStateMachineExecutionRole' }[call.fn];
  if (call.account === BUILDER && machineRole) {
    const role = builder.roles[machineRole];
    if (!role) throw new Error(`the packaged stack has no ${machineRole}`);
    const roleName = role.arn.split('/').pop() ?? '';
    return { principal: `arn:aws:sts::${BUILDER}:assumed-role/${roleName}/states`, roleArn: role.arn, roleName, policies: role.policies };
  }
  if (call.account === BUILDER) {
    const id = builder.functionRole[call.fn];
    const role = id ? builder.roles[id] : undefined;
    if (!role) throw new Error(`function ${call.fn} has no role in the packaged stack`);
    const roleName = role.arn.split('/').pop() ?? '';
    return { principal: `arn:aws:sts::${BUILDER}:assumed-role/${roleName}/${call.fn}`, roleArn: role.arn, roleName, policies: role.policies };
  }
  const target = targets[call.account];
  if (!target) throw new Error(`account ${call.account} has no target deployment in this test`);
  return { principal: `arn:aws:sts::${call.account}:assumed-role/${TARGET_ROLE}/ami-pipeline`, roleArn: target.role.arn, roleName: TARGET_ROLE, policies: target.role.policies };
}

/** The resource policy AWS evaluates with the request, if the resource has one. */
function resourcePolicyOf(request: IamRequest): { name: string; policy: PolicyDocument } | undefined {
  if (request.action.startsWith('kms:')) {
    const [, , , region = '', account = ''] = request.resource.split(':');
    if (account === BUILDER) return { name: 'source key policy (README)', policy: sourceKeyPolicy(BUILDER, [ACCOUNT_A, ACCOUNT_B]) };
    const target = targets[account];
    if (target) return { name: `key policy of ${account}/${region}`, policy: target.keyPolicy(region) };
  }
  if (request.action.startsWith('organizations:')) {
    // From the management account: the resource-based delegation policy docs/organizations.md gives.
    return { name: 'delegation policy (docs/organizations.md)', policy: organizationDelegationPolicy(BUILDER) };
  }
  if (request.action === 'sts:AssumeRole') {
    const account = request.resourceAccount ?? '';
    const target = targets[account];
    if (target && request.resource === target.role.arn) return { name: `trust policy of ${target.role.arn}`, policy: target.role.trust };
    if (!target) throw new Error(`AssumeRole into unknown account ${account}`);
  }
  return undefined;
}

interface Verdict {
  allowed: boolean;
  /** What was asked and of which policies, for the failure message. */
  describe: string;
}

async function evaluate(call: Pick<RecordedCall, 'fn' | 'account' | 'region'>, request: IamRequest, options: { identityOnly?: boolean } = {}): Promise<Verdict> {
  const caller = callerOf(call);
  // Identity policies only (as SimulatePrincipalPolicy): for a KMS key, a key policy that leaves it to IAM.
  const account = request.resource.split(':')[4] || call.account;
  const iamDecides = { name: 'key policy leaving it to IAM', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }] } };
  const resourcePolicy = options.identityOnly ? (request.action.startsWith('kms:') ? iamDecides : undefined) : resourcePolicyOf(request);
  const context: Record<string, string | string[]> = {
    'aws:PrincipalArn': caller.roleArn,
    'aws:PrincipalAccount': call.account,
    'aws:PrincipalOrgID': ORG_ID,
    'aws:RequestedRegion': request.resource.split(':')[3] || call.region,
    ...request.context,
  };
  if (request.action.startsWith('kms:')) context['kms:CallerAccount'] = call.account;
  if (request.via) context['kms:ViaService'] = `${request.via}.${call.region}.amazonaws.com`;
  const simulation: Simulation = {
    request: {
      principal: caller.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount ?? call.account },
      contextVariables: context,
    },
    identityPolicies: caller.policies.map((p) => ({ name: p.name, policy: p.policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicy?.policy,
  };
  const response = await runSimulation(simulation, {});
  const describe =
    `${request.action} on ${request.resource}${request.note ? ` (${request.note})` : ''}${request.via ? ` via ${request.via}` : ''} ` +
    `as ${caller.principal} [${JSON.stringify(request.context ?? {})}], policies ${caller.policies.map((p) => p.name).join(', ')}` +
    (resourcePolicy ? ` + ${resourcePolicy.name}` : '');
  if (response.resultType === 'error') return { allowed: false, describe: `${describe}: simulation error ${JSON.stringify(response.errors)}` };
  return { allowed: response.overallResult === 'Allowed', describe: `${describe}: ${response.overallResult}` };
}

describe('the IAM we ship, evaluated', () => {
  it('knows how AWS authorizes every call the functions make', () => {
    const unknown = [...new Set(calls.filter((c) => c.requests === undefined).map((c) => `${c.call.fn}: ${c.call.service}:${c.call.command}`))];
    expect(unknown, 'add these calls to REQUESTS in test/iam/requests.ts').toEqual([]);
  });

  it('allows every call the functions make, on both sides of cross-account calls', async () => {
    const denied: string[] = [];
    const seen = new Set<string>();
    let evaluated = 0;
    for (const { call, requests } of calls) {
      for (const request of requests ?? []) {
        const key = JSON.stringify([call.fn, call.account, call.region, request]);
        if (seen.has(key)) continue;
        seen.add(key);
        evaluated += 1;
        const verdict = await evaluate(call, request);
        if (!verdict.allowed) denied.push(`${call.fn}: ${call.service}:${call.command} -> ${verdict.describe}`);
      }
    }
    expect(denied).toEqual([]);
    // Every function, in the builder account and in targets, was recorded (a path the scenarios lost shows here).
    const functions = new Set(calls.map((c) => c.call.fn));
    expect([...functions].sort()).toEqual(['cli:doctor', 'cli:restore', 'copyEncrypt', 'createGrant', 'janitor', JANITOR_STATE_MACHINE_FN, 'modifyAttributes', 'notify', STATE_MACHINE_FN, 'preflight', 'publish', 'recordManifest', 'rekey', 'retention', 'snapshot', 'verifyLaunch'].sort());
    expect(evaluated).toBeGreaterThan(100);
  });

  it("allows every call the doctor simulates on the target role (cli/permissions.ts agrees with the template)", async () => {
    const denied: string[] = [];
    for (const mode of ['auto-scaling', 'run-instances'] as const) {
      const target = item({}, { verify: { mode, instanceType: null, timeoutMinutes: 15 }, publish: { parameterName: '/ami-pipeline/base/latest', launchTemplates: [], protect: true } });
      for (const call of runCalls(target, KEY_A_EU)) {
        const context = Object.fromEntries((call.context ?? []).map((e) => [e.ContextKeyName ?? '', (e.ContextKeyValues?.length ?? 0) > 1 ? e.ContextKeyValues ?? [] : e.ContextKeyValues?.[0] ?? '']));
        for (const action of call.actions) {
          for (const resource of call.resources) {
            // The doctor simulates identity policies only; the key policy's side is the key-policy check's.
            const verdict = await evaluate({ fn: 'doctor', account: ACCOUNT_A, region: 'eu-west-1' }, { action, resource, context }, { identityOnly: true });
            if (!verdict.allowed) denied.push(verdict.describe);
          }
        }
      }
    }
    expect(denied).toEqual([]);
  });

  it('shares the source: ModifySnapshotAttribute on a snapshot ARN, which has no account', async () => {
    const share = calls.find((c) => c.call.command === 'ModifySnapshotAttribute');
    expect(share?.requests?.[0]?.resource).toMatch(/^arn:aws:ec2:eu-west-1::snapshot\/snap-/);
    expect((await evaluate(share!.call, share!.requests![0]!)).allowed).toBe(true);
  });

  it('retires copies: DeregisterImage with DeleteAssociatedSnapshots, and DeleteSnapshot on a snapshot ARN, which has no account', async () => {
    const retire = calls.find((c) => c.call.command === 'DeregisterImage' && c.call.input.DeleteAssociatedSnapshots === true);
    const deleteSnapshot = retire?.requests?.find((r) => r.action === 'ec2:DeleteSnapshot');
    expect(deleteSnapshot?.resource).toMatch(/^arn:aws:ec2:eu-west-1::snapshot\/snap-/);
    expect((await evaluate(retire!.call, deleteSnapshot!)).allowed).toBe(true);
  });

  it('lets the state machine start, follow and redrive its own Map Run children, and write their results', async () => {
    expect(calls.some((c) => c.call.fn === STATE_MACHINE_FN && c.call.command === 'StartExecution')).toBe(true);
    const child = `arn:aws:states:eu-west-1:${BUILDER}:execution:encrypted-ami-pipeline-test/Targets:0b1c2d3e-0000-0000-0000-000000000000`;
    for (const request of [
      { action: 'states:RedriveExecution', resource: child },
      { action: 'states:StopExecution', resource: child },
      { action: 'states:DescribeExecution', resource: child },
      { action: 's3:AbortMultipartUpload', resource: `arn:aws:s3:::${RUNS_BUCKET}/runs/some-run/results/0b1c2d3e/SUCCEEDED_0.json` },
    ]) {
      const verdict = await evaluate({ fn: STATE_MACHINE_FN, account: BUILDER, region: 'eu-west-1' }, request);
      expect(verdict.allowed, verdict.describe).toBe(true);
    }
  });

  it('would catch a snapshot pattern with an account (the simulator matches ARNs, it does not grep)', async () => {
    const share = calls.find((c) => c.call.command === 'ModifySnapshotAttribute')!;
    const caller = callerOf(share.call);
    const broken = JSON.parse(JSON.stringify(caller.policies).replace(/:ec2:\*::snapshot\//g, `:ec2:*:${BUILDER}:snapshot/`)) as NamedPolicy[];
    const response = await runSimulation(
      {
        request: { principal: caller.principal, action: 'ec2:ModifySnapshotAttribute', resource: { resource: share.requests![0]!.resource, accountId: BUILDER }, contextVariables: {} },
        identityPolicies: broken,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    expect(response.resultType === 'single' && response.overallResult).toBe('ImplicitlyDenied');
  });
});

/** Calls that must be denied: who would make them, and the request. */
const MUST_BE_DENIED: { name: string; fn: string; account: string; request: IamRequest }[] = [
  {
    name: 'the target role scheduling the deletion of the target key',
    fn: 'copyEncrypt',
    account: ACCOUNT_A,
    request: { action: 'kms:ScheduleKeyDeletion', resource: `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111` },
  },
  {
    name: "the target role decrypting with the builder's key outside EC2",
    fn: 'copyEncrypt',
    account: ACCOUNT_A,
    request: { action: 'kms:Decrypt', resource: `arn:aws:kms:eu-west-1:${BUILDER}:key/99999999-9999-9999-9999-999999999999`, resourceAccount: BUILDER },
  },
  {
    name: 'deregistering an image the pipeline did not make',
    fn: 'retention',
    account: ACCOUNT_A,
    request: { action: 'ec2:DeregisterImage', resource: 'arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0', context: { 'aws:ResourceTag/team': 'web' } },
  },
  {
    name: 'deleting a snapshot the pipeline did not make',
    fn: 'retention',
    account: ACCOUNT_A,
    request: { action: 'ec2:DeleteSnapshot', resource: 'arn:aws:ec2:eu-west-1::snapshot/snap-0123456789abcdef0' },
  },
  {
    name: 'terminating an instance the pipeline did not launch',
    fn: 'verifyLaunch',
    account: ACCOUNT_A,
    request: { action: 'ec2:TerminateInstances', resource: `arn:aws:ec2:eu-west-1:${ACCOUNT_A}:instance/i-0123456789abcdef0` },
  },
  {
    name: 'deleting a launch template the pipeline did not make',
    fn: 'verifyLaunch',
    account: ACCOUNT_A,
    request: { action: 'ec2:DeleteLaunchTemplate', resource: `arn:aws:ec2:eu-west-1:${ACCOUNT_A}:launch-template/lt-0123456789abcdef0` },
  },
  {
    name: 'deleting an Auto Scaling group the pipeline did not make',
    fn: 'verifyLaunch',
    account: ACCOUNT_A,
    request: {
      action: 'autoscaling:DeleteAutoScalingGroup',
      resource: `arn:aws:autoscaling:eu-west-1:${ACCOUNT_A}:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/web`,
      context: { 'autoscaling:ForceDelete': 'true' },
    },
  },
  {
    name: 'launching an instance without the pipeline tags',
    fn: 'verifyLaunch',
    account: ACCOUNT_A,
    request: { action: 'ec2:RunInstances', resource: `arn:aws:ec2:eu-west-1:${ACCOUNT_A}:instance/*`, context: { 'aws:TagKeys': [] } },
  },
  {
    name: 'a grant on the target key to another principal',
    fn: 'createGrant',
    account: ACCOUNT_A,
    request: {
      action: 'kms:CreateGrant',
      resource: `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111`,
      context: { 'kms:GranteePrincipal': `arn:aws:iam::${ACCOUNT_A}:role/SomeoneElse`, 'kms:GrantOperations': ['Decrypt'], 'kms:GrantIsForAWSResource': 'false' },
    },
  },
  {
    name: 'a grant to Auto Scaling with other operations',
    fn: 'createGrant',
    account: ACCOUNT_A,
    request: {
      action: 'kms:CreateGrant',
      resource: `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111`,
      context: {
        'kms:GranteePrincipal': `arn:aws:iam::${ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
        'kms:GrantOperations': ['Decrypt', 'RetireGrant'],
        'kms:GrantIsForAWSResource': 'false',
      },
    },
  },
  {
    name: 'writing a parameter outside the publish prefix',
    fn: 'publish',
    account: ACCOUNT_A,
    request: { action: 'ssm:PutParameter', resource: `arn:aws:ssm:eu-west-1:${ACCOUNT_A}:parameter/app/database-password` },
  },
  {
    name: "ResolveSource's role assuming the target role",
    fn: 'snapshot',
    account: BUILDER,
    request: { action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT_A}:role/${TARGET_ROLE}`, resourceAccount: ACCOUNT_A },
  },
  {
    name: 'the target-access role assuming the target role without its ExternalId',
    fn: 'copyEncrypt',
    account: BUILDER,
    request: { action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT_B}:role/${TARGET_ROLE}`, resourceAccount: ACCOUNT_B },
  },
  {
    name: 'the target-access role assuming another role of a target account',
    fn: 'copyEncrypt',
    account: BUILDER,
    request: { action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT_A}:role/OrganizationAccountAccessRole`, resourceAccount: ACCOUNT_A },
  },
  {
    name: 'the target role listing Recycle Bin rules of another resource type than AMIs and snapshots',
    fn: 'cli:doctor',
    account: ACCOUNT_A,
    request: { action: 'rbin:ListRules', resource: '*', context: { 'rbin:Request/ResourceType': 'EBS_VOLUME' } },
  },
  {
    name: 'the state machine starting an execution of another state machine',
    fn: STATE_MACHINE_FN,
    account: BUILDER,
    request: { action: 'states:StartExecution', resource: `arn:aws:states:eu-west-1:${BUILDER}:stateMachine:other-machine` },
  },
  {
    name: 'the state machine redriving an execution that is not one of its Map Run children',
    fn: STATE_MACHINE_FN,
    account: BUILDER,
    request: { action: 'states:RedriveExecution', resource: `arn:aws:states:eu-west-1:${BUILDER}:execution:encrypted-ami-pipeline-test:some-run` },
  },
  {
    name: "the janitor's state machine starting an execution of the pipeline (its Map Run's children are its own)",
    fn: JANITOR_STATE_MACHINE_FN,
    account: BUILDER,
    request: { action: 'states:StartExecution', resource: `arn:aws:states:eu-west-1:${BUILDER}:stateMachine:encrypted-ami-pipeline-test` },
  },
  {
    name: "the janitor's state machine writing into a run's own results (only under runs/<execution>/janitor/)",
    fn: JANITOR_STATE_MACHINE_FN,
    account: BUILDER,
    request: { action: 's3:PutObject', resource: `arn:aws:s3:::${RUNS_BUCKET}/runs/some-run/results/1/SUCCEEDED_0.json` },
  },
  {
    name: "the state machine overwriting a run's manifest (only ResultWriter's files)",
    fn: STATE_MACHINE_FN,
    account: BUILDER,
    request: { action: 's3:PutObject', resource: `arn:aws:s3:::${RUNS_BUCKET}/runs/some-run/manifest.json` },
  },
  {
    name: "ShareSource's role deleting a snapshot",
    fn: 'modifyAttributes',
    account: BUILDER,
    request: { action: 'ec2:DeleteSnapshot', resource: 'arn:aws:ec2:eu-west-1::snapshot/snap-0123456789abcdef0' },
  },
];

describe('calls that must be denied', () => {
  beforeAll(() => {
    // The trust policy names the stage's role: the table's callers are real roles of the packaged stack.
    expect(builder.roles.TargetAccessRole?.arn).toBe(`arn:aws:iam::${BUILDER}:role/${TARGET_ACCESS_ROLE}`);
  });
  for (const denial of MUST_BE_DENIED) {
    it(`denies ${denial.name}`, async () => {
      const verdict = await evaluate({ fn: denial.fn, account: denial.account, region: 'eu-west-1' }, denial.request);
      expect(verdict.allowed, verdict.describe).toBe(false);
      expect(verdict.describe).not.toContain('simulation error');
    });
  }
});

describe("templates/organization.yml's reader role (organization.roleArn)", () => {
  const reader = () => organizationReader(ORG_MANAGEMENT, BUILDER);
  const simulate = (principal: string, policies: NamedPolicy[], action: string, resource: string, resourceAccount: string, resourcePolicy?: PolicyDocument) =>
    runSimulation(
      {
        request: { principal, action, resource: { resource, accountId: resourceAccount }, contextVariables: { 'aws:PrincipalAccount': principal.split(':')[4] ?? '' } },
        identityPolicies: policies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(resourcePolicy ? { resourcePolicy } : {}),
      },
      {},
    );

  it('may be assumed by ResolveSource\'s role, and lists the OUs and their accounts', async () => {
    const snapshot = callerOf({ fn: 'snapshot', account: BUILDER });
    const assume = await simulate(snapshot.principal, snapshot.policies, 'sts:AssumeRole', reader().arn, ORG_MANAGEMENT, reader().trust);
    expect(assume.resultType === 'single' && assume.overallResult).toBe('Allowed');
    const principal = `arn:aws:sts::${ORG_MANAGEMENT}:assumed-role/AmiPipelineOrganizationReader/ami-pipeline`;
    for (const action of ['organizations:ListAccountsForParent', 'organizations:ListOrganizationalUnitsForParent']) {
      for (const parent of [`root/${OU_ORG_ID}/r-ab12`, `ou/${OU_ORG_ID}/ou-ab12-11111111`]) {
        const list = await simulate(principal, reader().policies, action, `arn:aws:organizations::${ORG_MANAGEMENT}:${parent}`, ORG_MANAGEMENT);
        expect(list.resultType === 'single' && list.overallResult, `${action} ${parent}`).toBe('Allowed');
      }
    }
  });

  it('allows exactly the Organizations calls the pipeline makes (the recording), nothing more', () => {
    const made = new Set(calls.flatMap((c) => c.requests ?? []).map((r) => r.action).filter((a) => a.startsWith('organizations:')));
    const granted = reader().policies.flatMap((p) => p.policy.Statement).flatMap((s) => [s.Action].flat() as string[]);
    expect(granted.sort()).toEqual([...made].sort());
  });

  it('may not be assumed by the target-access role, and may not move accounts', async () => {
    const access = callerOf({ fn: 'copyEncrypt', account: BUILDER });
    const assume = await simulate(access.principal, access.policies, 'sts:AssumeRole', reader().arn, ORG_MANAGEMENT, reader().trust);
    expect(assume.resultType === 'single' && assume.overallResult).not.toBe('Allowed');
    const principal = `arn:aws:sts::${ORG_MANAGEMENT}:assumed-role/AmiPipelineOrganizationReader/ami-pipeline`;
    const move = await simulate(principal, reader().policies, 'organizations:MoveAccount', `arn:aws:organizations::${ORG_MANAGEMENT}:account/${OU_ORG_ID}/111111111111`, ORG_MANAGEMENT);
    expect(move.resultType === 'single' && move.overallResult).not.toBe('Allowed');
  });
});
