/**
 * `serverless package` runs offline (osls, esbuild bundles, serverless-step-functions) and produces the stack
 * we deploy: thirteen functions (the five steps, the preflight, publishing, retention, the rekey steps, the manifest,
 * the notification, the janitor's reader and the starter), the run's state machine invoking exactly its functions with
 * its Distributed Map inlined and the janitor's, the runs bucket, the nightly schedule, the new-image rule and the
 * janitor's rule (through the starter), and least-privilege roles.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packagedDir } from '../support/package';
import { loadTemplate } from '../support/cfn';
import { matches, type Pattern } from '../support/event-pattern';
import { statusChangeEvent } from '../support/sfn-events';

type Resource = { Type: string; Condition?: string; Properties: Record<string, unknown> };
let template: { Resources: Record<string, Resource>; Outputs: Record<string, unknown> };
let dir: string;

const FUNCTIONS = ['Snapshot', 'ModifyAttributes', 'Preflight', 'CopyEncrypt', 'CreateGrant', 'VerifyLaunch', 'Publish', 'Retention', 'Rekey', 'RecordManifest', 'Notify'];
/** The janitor's reader and the function that starts executions (not invoked by the run's machine). */
const OTHER_FUNCTIONS = ['Janitor', 'StartExecution'];

beforeAll(() => {
  // Packaged once per content of its inputs, shared with the IAM policy test (test/support/package.ts).
  dir = packagedDir();
  template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as typeof template;
}, 200_000);

const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);
const statements = (role: Resource) =>
  ((role.Properties.Policies as { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } }[]) ?? []).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
const actions = (role: Resource) => statements(role).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

describe('serverless package', () => {
  it('bundles thirteen functions on nodejs22.x arm64, one zip each', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.map(([id]) => id).sort()).toEqual([...FUNCTIONS, ...OTHER_FUNCTIONS].map((f) => `${f}LambdaFunction`).sort());
    for (const [, f] of functions) {
      expect(f.Properties.Runtime).toBe('nodejs22.x');
      expect(f.Properties.Architectures).toEqual(['arm64']);
    }
    for (const zip of ['snapshot', 'modifyAttributes', 'preflight', 'copyEncrypt', 'createGrant', 'verifyLaunch', 'publish', 'retention', 'rekey', 'recordManifest', 'notify', 'janitor', 'startExecution']) {
      expect(existsSync(join(dir, `${zip}.zip`)), zip).toBe(true);
    }
  });

  it('defines one state machine from statemachine/, the per-target flow inlined as its Distributed Map, its role invoking exactly our functions', () => {
    const machines = Object.fromEntries(ofType('AWS::StepFunctions::StateMachine'));
    expect(Object.keys(machines).sort()).toEqual(['JanitorStateMachine', 'PipelineStateMachine']);
    const definition = JSON.stringify(machines.PipelineStateMachine?.Properties.DefinitionString);
    for (const state of ['ResolveSource', 'ShareSource', 'DistributeTargets', 'UnshareSource', 'RecordManifest', 'NotifyCompletion']) expect(definition).toContain(state);
    // ${file(statemachine/distribute.asl.yml)} resolved: the ItemProcessor is the per-target flow.
    for (const state of ['IsRekeyTarget', 'RecordTargetSuccess', 'PreflightTarget', 'CopyEncryptImage', 'CreateKmsGrant', 'StartLaunchCheck', 'PublishImage', 'ApplyRetention', 'ResolveCurrentCopy', 'RevokeOldGrants', 'TargetFailed']) {
      expect(definition).toContain(state);
    }
    expect(definition).toContain('DISTRIBUTED');
    expect(definition).not.toContain('${file(');
    const role = template.Resources[(machines.PipelineStateMachine?.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]] as Resource;
    const invoke = statements(role).filter((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]).includes('lambda:InvokeFunction'));
    expect(invoke).toHaveLength(1);
    expect(actions(role).filter((a) => a.startsWith('lambda:'))).toEqual(['lambda:InvokeFunction']);
    const targets = (invoke[0]?.Resource as unknown[]).map((r) => JSON.stringify(r));
    expect(FUNCTIONS.filter((f) => targets.some((t) => t.includes(`"${f}LambdaFunction"`))).sort()).toEqual([...FUNCTIONS].sort());
    expect(targets.every((t) => FUNCTIONS.some((f) => t.includes(`"${f}LambdaFunction"`)))).toBe(true);
  });

  it("lets the machine start, follow, stop and redrive only its own Map Run's children, and read and write only its runs' files", () => {
    const role = template.Resources.PipelineStateMachineExecutionRole as Resource;
    const statement = (action: string) => statements(role).filter((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]).includes(action));
    expect(JSON.stringify(statement('states:StartExecution').map((s) => s.Resource))).toContain(':stateMachine:encrypted-ami-pipeline-test');
    for (const action of ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution']) {
      const [s] = statement(action);
      expect(JSON.stringify(s?.Resource)).toContain(':execution:encrypted-ami-pipeline-test/Targets:*');
    }
    expect(actions(role).filter((a) => a.startsWith('states:')).sort()).toEqual(['states:DescribeExecution', 'states:RedriveExecution', 'states:StartExecution', 'states:StopExecution']);
    expect(JSON.stringify(statement('s3:GetObject').map((s) => s.Resource))).toContain('/runs/*/targets.json');
    expect(JSON.stringify(statement('s3:PutObject').map((s) => s.Resource))).toContain('/runs/*/results/*');
    expect(actions(role).filter((a) => a.startsWith('s3:')).sort()).toEqual(['s3:AbortMultipartUpload', 's3:GetObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject']);
  });

  it('keeps the runs in an encrypted, versioned, private, TLS-only bucket that expires them', () => {
    const bucket = template.Resources.RunsBucket as Resource & { DeletionPolicy?: string };
    expect(bucket.Type).toBe('AWS::S3::Bucket');
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ Status: 'Enabled', Prefix: 'runs/', ExpirationInDays: 400 })] },
    });
    const policy = (template.Resources.RunsBucketPolicy as Resource).Properties.PolicyDocument as { Statement: Record<string, unknown>[] };
    expect(policy.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Principal: '*', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    // ResolveSource writes the run's targets there; RecordManifest is told the bucket by the run's plan.
    const functions = Object.fromEntries(ofType('AWS::Lambda::Function'));
    expect((functions.SnapshotLambdaFunction?.Properties.Environment as { Variables: Record<string, unknown> }).Variables.RUNS_BUCKET).toEqual({ Ref: 'RunsBucket' });
  });

  it('starts the machine nightly and when a new image of the builder account becomes available, through the starter (names from the trigger)', () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    const starter = (r: Record<string, unknown>) => JSON.stringify((r.Targets as { Arn: unknown }[])[0]?.Arn) === JSON.stringify({ 'Fn::GetAtt': ['StartExecutionLambdaFunction', 'Arn'] });
    const schedule = rules.find((r) => typeof r.ScheduleExpression === 'string');
    expect(schedule?.ScheduleExpression).toMatch(/^cron\(/);
    expect(schedule && starter(schedule)).toBe(true);
    const onImage = rules.find((r) => (r.EventPattern as { source?: string[] } | undefined)?.source?.[0] === 'aws.ec2');
    // The new-account rules (test/unit/organization-events.test.ts feeds them recorded events), and the bus policy
    // that lets the management account's forwarding rule in only when managementAccountId is set.
    const joins = rules.filter((r) => (r.EventPattern as { source?: string[] } | undefined)?.source?.[0] === 'aws.organizations');
    expect(joins.map((r) => (r.EventPattern as { detail: { eventName: string[] } }).detail.eventName[0]).sort()).toEqual(['AccountJoinedOrganization', 'CreateAccountResult', 'MoveAccount']);
    expect(template.Resources.OrganizationEventsBusPolicy?.Condition).toBe('AcceptsOrganizationEvents');
    expect(onImage?.EventPattern).toEqual({ source: ['aws.ec2'], 'detail-type': ['EC2 AMI State Change'], detail: { State: ['available'] } });
    expect(onImage && starter(onImage)).toBe(true);
    const env = (template.Resources.StartExecutionLambdaFunction?.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      PIPELINE_STATE_MACHINE_ARN: { Ref: 'PipelineStateMachine' },
      JANITOR_STATE_MACHINE_ARN: { Ref: 'JanitorStateMachine' },
      OPT_IN_TAG_KEY: 'ami-pipeline:distribute',
      TARGETS_PARAMETER: '/ami-pipeline/targets',
    });
  });

  it("starts the janitor on AWS's documented Step Functions Execution Status Change event for our machine when it ended ABORTED, TIMED_OUT or FAILED, and on no other", () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    const rule = rules.find((r) => (r.EventPattern as { source?: string[] } | undefined)?.source?.[0] === 'aws.states');
    expect(JSON.stringify((rule?.Targets as { Arn: unknown }[])[0]?.Arn)).toContain('StartExecutionLambdaFunction');
    // The machine is matched by its ARN (Ref: PipelineStateMachine); resolve it to the sample's ARN.
    const ours = 'arn:aws:states:us-east-1:123456789012:stateMachine:state-machine';
    const pattern = JSON.parse(JSON.stringify(rule?.EventPattern).replace('{"Ref":"PipelineStateMachine"}', JSON.stringify(ours))) as Pattern;
    expect(JSON.stringify(rule?.EventPattern)).toContain('{"Ref":"PipelineStateMachine"}');
    for (const status of ['ABORTED', 'TIMED_OUT', 'FAILED']) expect(matches(pattern, statusChangeEvent({ status })), status).toBe(true);
    for (const status of ['RUNNING', 'SUCCEEDED', 'PENDING_REDRIVE']) expect(matches(pattern, statusChangeEvent({ status })), status).toBe(false);
    // A batch's or a Distributed Map child's execution is of another state machine.
    expect(matches(pattern, statusChangeEvent({ status: 'ABORTED', stateMachineArn: `${ours}-distribute` }))).toBe(false);
    expect(matches(pattern, statusChangeEvent({ status: 'FAILED', stateMachineArn: `${ours}/map-run-label` }))).toBe(false);
    expect(matches(pattern, { ...statusChangeEvent({ status: 'ABORTED' }), source: 'aws.ec2' })).toBe(false);
    const role = template.Resources.StartExecutionRole as Resource;
    expect(actions(role).filter((a) => !a.startsWith('logs:'))).toEqual(['states:StartExecution']);
    expect(statements(role).find((s) => s.Action === 'states:StartExecution')?.Resource).toEqual([{ Ref: 'PipelineStateMachine' }, { Ref: 'JanitorStateMachine' }]);
  });

  it("lets the janitor's machine invoke only its five functions and run only its own cleanup children, and its function only read the pipeline's executions and the cleanup's results", () => {
    const machine = template.Resources.JanitorStateMachine as Resource;
    const role = template.Resources[(machine.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]] as Resource;
    const invoke = statements(role).find((s) => s.Action === 'lambda:InvokeFunction');
    const invoked = [...FUNCTIONS, ...OTHER_FUNCTIONS].filter((f) => JSON.stringify(invoke?.Resource).includes(`"${f}LambdaFunction"`));
    expect(invoked.sort()).toEqual(['CopyEncrypt', 'Janitor', 'ModifyAttributes', 'Notify', 'VerifyLaunch']);
    const reader = template.Resources.JanitorRole as Resource;
    expect(actions(reader).filter((a) => !a.startsWith('logs:')).sort()).toEqual(['s3:GetObject', 'states:DescribeExecution', 'states:GetExecutionHistory']);
    expect(JSON.stringify(statements(reader).find((s) => s.Action === 's3:GetObject')?.Resource)).toContain('/runs/*/janitor/*');
    expect(JSON.stringify(statements(reader))).toContain(':execution:encrypted-ami-pipeline-test:*');
    // The cleanup Distributed Map: children of the janitor's own machine, its targets file in, its results out.
    const statement = (action: string) => JSON.stringify(statements(role).filter((s) => [s.Action].flat().includes(action)).map((s) => s.Resource));
    expect(statement('states:StartExecution')).toContain(':stateMachine:encrypted-ami-pipeline-janitor-test');
    for (const action of ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution']) {
      expect(statement(action)).toContain(':execution:encrypted-ami-pipeline-janitor-test/Cleanup:*');
    }
    expect(statement('s3:PutObject')).toContain('/runs/*/janitor/*');
    expect(statement('s3:PutObject')).not.toContain('/runs/*/targets.json');
  });

  it('gives the functions least privilege: no wildcard services, no kms:* or ec2:*, target access only through the target role', () => {
    const roles = ['SnapshotRole', 'ModifyAttributesRole', 'TargetAccessRole', 'RecordManifestRole', 'NotifyRole'].map((id) => template.Resources[id] as Resource);
    for (const role of roles) {
      for (const action of actions(role)) expect(action).not.toMatch(/^(\*|kms:\*|ec2:\*|iam:\*|sts:\*)$/);
    }
    const target = template.Resources.TargetAccessRole as Resource;
    expect(actions(target).filter((a) => !a.startsWith('logs:'))).toEqual(['sts:AssumeRole']);
    expect(JSON.stringify(statements(target).find((s) => s.Action.includes('sts:AssumeRole'))?.Resource)).toContain(':role/AmiPipelineTarget');
    const functions = Object.fromEntries(ofType('AWS::Lambda::Function'));
    expect(JSON.stringify(functions.CopyEncryptLambdaFunction?.Properties.Role)).toContain('TargetAccessRole');
    expect(JSON.stringify(functions.PreflightLambdaFunction?.Properties.Role)).toContain('TargetAccessRole');
    expect(JSON.stringify(functions.PublishLambdaFunction?.Properties.Role)).toContain('TargetAccessRole');
    expect(JSON.stringify(functions.RetentionLambdaFunction?.Properties.Role)).toContain('TargetAccessRole');
    expect(JSON.stringify(functions.RekeyLambdaFunction?.Properties.Role)).toContain('TargetAccessRole');
    const notify = template.Resources.NotifyRole as Resource;
    expect(actions(notify).filter((a) => !a.startsWith('logs:')).sort()).toEqual(['events:PutEvents', 'sns:Publish']);
    expect(JSON.stringify(statements(notify))).toContain('event-bus/default');
    expect(JSON.stringify(functions.ModifyAttributesLambdaFunction?.Properties.Role)).toContain('ModifyAttributesRole');
  });

  it('tells ResolveSource what the deployment allows, as the target template does by default', async () => {
    const env = (template.Resources.SnapshotLambdaFunction?.Properties.Environment as { Variables: Record<string, string> }).Variables;
    expect(env.TARGET_ROLE_NAMES).toBe('AmiPipelineTarget');
    expect(env.PUBLISH_PARAMETER_PREFIX).toBe('/ami-pipeline/');
    const target = loadTemplate(new URL('../../templates/target-account.yml', import.meta.url));
    const defaults = target.Parameters as Record<string, { Default?: string }>;
    expect((env.TARGET_ROLE_NAMES ?? '').split(',')).toContain(defaults.TargetRoleName?.Default);
    expect(defaults.ParameterPrefix?.Default).toBe(env.PUBLISH_PARAMETER_PREFIX);
  });

  it('lets the target-access role assume exactly the role names of the param targetRoleNames', async () => {
    const { targetRoleArns } = createRequire(import.meta.url)('../../serverless-iam.cjs') as { targetRoleArns: (a: { resolveVariable: (v: string) => Promise<string> }) => Promise<unknown[]> };
    const arns = await targetRoleArns({ resolveVariable: async (v) => (v === 'param:targetRoleNames' ? 'AmiPipelineTarget, AmiPipelineTargetEu' : '') });
    expect(arns).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:iam::*:role/AmiPipelineTarget' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:iam::*:role/AmiPipelineTargetEu' },
    ]);
    await expect(targetRoleArns({ resolveVariable: async () => 'role/with/path' })).rejects.toThrow('param targetRoleNames');
    const role = template.Resources.TargetAccessRole as Resource;
    expect(statements(role).find((s) => s.Action.includes('sts:AssumeRole'))?.Resource).toEqual([{ 'Fn::Sub': 'arn:${AWS::Partition}:iam::*:role/AmiPipelineTarget' }]);
  });

  it('outputs the state machine ARN for the CLI', () => {
    expect(JSON.stringify(template.Outputs.StateMachineArn)).toContain('PipelineStateMachine');
  });
});
