import { readFileSync, rmSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../functions/shared/manifest-schema';
import { LAUNCH_FAILURE, runCli, STUB_INPUT, stubManifest, stubScript, tempDir, writeJson } from '../support/cli';
import { startSfnStub, STUB_CHILD_ARN, STUB_MAP_RUN_ARN, STUB_STACK, type SfnStub } from '../support/sfn-stub';

describe('ami-pipeline run and status against a deployed state machine', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const input = writeJson(dir, 'input.json', STUB_INPUT);
  let stub: SfnStub | undefined;
  afterEach(async () => {
    await stub?.close();
    stub = undefined;
  });

  const cli = (s: SfnStub, args: string[]) => runCli([...args, '--endpoint-url', s.endpoint, '--poll-ms', '50', '--region', 'eu-west-1']);
  const targets = (s: SfnStub, name: string) => s.requests.filter((r) => r.target === `AWSStepFunctions.${name}`);

  it('starts the execution, shows each target as it moves, and ends with the manifest table', async () => {
    stub = await startSfnStub(stubScript('succeeded'));
    const result = await cli(stub, ['run', '--input', input, '--state-machine-arn', stub.stateMachineArn]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(targets(stub, 'StartExecution')[0]?.body).toEqual({ stateMachineArn: stub.stateMachineArn, input: JSON.stringify(STUB_INPUT) });
    // Three looks at the run; the targets' full lines are read from the manifest in S3.
    expect(targets(stub, 'DescribeExecution').map((r) => r.body.executionArn)).toEqual([stub.executionArn, stub.executionArn, stub.executionArn]);
    expect(stub.requests.filter((r) => r.target === 'S3.GetObject').map((r) => r.body.path)).toEqual(['ami-pipeline-runs-stub/runs/cli-test-run/manifest.json']);
    // The Map Run's child executions are listed and followed: that is where the targets move.
    expect(targets(stub, 'ListExecutions').every((r) => r.body.mapRunArn === STUB_MAP_RUN_ARN)).toBe(true);
    const history = targets(stub, 'GetExecutionHistory');
    expect(history.some((r) => r.body.executionArn === STUB_CHILD_ARN)).toBe(true);
    expect(history.every((r) => r.body.reverseOrder === false)).toBe(true);
    expect(history.some((r) => typeof r.body.nextToken === 'string')).toBe(true);

    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`started ${stub.executionArn}`);
    for (const phase of ['copying', 'granting', 'verifying', 'done']) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^111111111111 eu-west-1 ${phase} \\(\\d+s\\)$`)));
    }
    expect(lines.indexOf('111111111111 eu-west-1 copying (0s)')).toBeLessThan(lines.indexOf('111111111111 eu-west-1 granting (4s)'));
    expect(lines.filter((l) => l.startsWith('222222222222 eu-west-1 copying'))).toHaveLength(1);
    expect(result.stdout).toMatch(/^ACCOUNT\s+REGION\s+STATUS\s+IMAGE\s+KEY\s+GRANT\s+LAUNCH CHECK\s+ERROR$/m);
    expect(result.stdout).toMatch(/^111111111111\s+eu-west-1\s+succeeded\s+ami-0\w+\s+key\/1234abcd…\s+f4a1c0ffee…\s+verified \(asg\)$/m);
    expect(result.stdout).toContain(
      'SUCCEEDED: 2 of 2 targets succeeded, 0 failed; source share revoked (execution cli-test-run); manifest s3://ami-pipeline-runs-stub/runs/cli-test-run/manifest.json',
    );
  });

  it('starts a rekey with mode rekey and a retention dry run with --dry-run', async () => {
    stub = await startSfnStub(stubScript('succeeded'));
    const rekeyInput = writeJson(dir, 'rekey.json', { targets: STUB_INPUT.targets, publish: { parameterName: '/ami-pipeline/base/latest' } });
    const result = await cli(stub, ['rekey', '--input', rekeyInput, '--state-machine-arn', stub.stateMachineArn, '--dry-run']);
    expect(result.code).toBe(0);
    const started = JSON.parse(String(targets(stub, 'StartExecution')[0]?.body.input)) as Record<string, unknown>;
    expect(started).toMatchObject({ mode: 'rekey', retention: { dryRun: true } });
  });

  it('prints only the manifest JSON on stdout with --output json, and writes it with --manifest', async () => {
    stub = await startSfnStub(stubScript('succeeded'));
    const manifestFile = `${dir}/succeeded.json`;
    const result = await cli(stub, ['run', '-i', input, '--state-machine-arn', stub.stateMachineArn, '--output', 'json', '--manifest', manifestFile]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(stubManifest(false));
    expect(JSON.parse(readFileSync(manifestFile, 'utf8'))).toEqual(stubManifest(false));
    expect(result.stderr).toContain(`started ${stub.executionArn}`);
    expect(result.stderr).toMatch(/^222222222222 eu-west-1 granting \(\d+s\)$/m);
  });

  it('fails with the partial manifest from the RunFailedError cause and shows the failed target', async () => {
    stub = await startSfnStub(stubScript('partial'));
    const manifestFile = `${dir}/partial.json`;
    const result = await cli(stub, ['run', '-i', input, '--state-machine-arn', stub.stateMachineArn, '--manifest', manifestFile]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^222222222222 eu-west-1 failed \(\d+s\): LaunchFailedError$/m);
    expect(result.stdout).toMatch(/^222222222222\s+eu-west-1\s+failed\s+ami-0\w+\s+key\/1234abcd…\s+-\s+not-verified \(asg\)\s+LaunchFailedError: Launch check in 2.*…$/m);
    expect(result.stdout).toContain('PARTIAL: 1 of 2 targets succeeded, 1 failed; source share revoked');
    expect(result.stdout).toContain(LAUNCH_FAILURE);
    expect((JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest).status).toBe('PARTIAL');
  });

  it('reports a run the state machine rejected by its error name and message', async () => {
    stub = await startSfnStub(stubScript('rejected'));
    const result = await cli(stub, ['run', '-i', input, '--state-machine-arn', stub.stateMachineArn, '--output', 'json']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SourceImageNotFoundError: Source image ami-0123456789abcdef0 not found in eu-west-1');
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'FAILED', error: { name: 'SourceImageNotFoundError' } });
  });

  it('finds the state machine from the stack output, and says when the stack does not exist', async () => {
    stub = await startSfnStub(stubScript('succeeded'));
    const found = await cli(stub, ['run', '-i', input, '--stack', STUB_STACK, '--output', 'json']);
    expect(found.code).toBe(0);
    expect(stub.requests[0]).toMatchObject({ target: 'CloudFormation.DescribeStacks', body: { StackName: STUB_STACK } });
    const missing = await cli(stub, ['run', '-i', input]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(
      'ami-pipeline: stack encrypted-ami-pipeline-prod does not exist in eu-west-1: deploy it (npx serverless deploy), or pass --stack NAME, --region or --state-machine-arn',
    );
  });

  it('shows a running execution with status, follows it to the end with --follow', async () => {
    stub = await startSfnStub(stubScript('partial'));
    const running = await cli(stub, ['status', stub.executionArn]);
    expect(running.code).toBe(0);
    expect(running.stdout).toMatch(/copying to the targets/);
    expect(running.stdout).toMatch(/^\s+111111111111\s+eu-west-1\s+copying/m);
    expect(running.stdout).toContain(`still running: follow it with ami-pipeline status ${stub.executionArn} --follow`);

    const followed = await cli(stub, ['status', stub.executionArn, '--follow']);
    expect(followed.code).toBe(1);
    expect(followed.stdout).toMatch(/^\s+111111111111\s+eu-west-1\s+granting/m);
    expect(followed.stdout).toMatch(/^111111111111 eu-west-1 verifying \(\d+s\)$/m);
    expect(followed.stdout).toContain('PARTIAL: 1 of 2 targets succeeded, 1 failed');

    const finished = await cli(stub, ['status', stub.executionArn, '--output', 'json']);
    expect(finished.code).toBe(1);
    expect(JSON.parse(finished.stdout)).toEqual(stubManifest(true));
  });

  it('redrives a failed run and follows it to its manifest; a run RedriveExecution refuses, it says to start a new run', async () => {
    stub = await startSfnStub(stubScript('partial'));
    const redriven = await cli(stub, ['redrive', stub.executionArn]);
    expect(targets(stub, 'RedriveExecution').map((r) => r.body.executionArn)).toEqual([stub.executionArn]);
    expect(redriven.stdout).toContain(`redriven ${stub.executionArn}: what did not succeed runs again`);
    expect(redriven.stdout).toContain('PARTIAL: 1 of 2 targets succeeded, 1 failed');
    expect(redriven.code).toBe(1);
    await stub.close();

    stub = await startSfnStub({ ...stubScript('succeeded'), notRedrivable: 'Execution is SUCCEEDED and cannot be redriven' });
    const refused = await cli(stub, ['redrive', stub.executionArn]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ExecutionNotRedrivable: Execution');
    expect(refused.stderr).toContain('Execution is SUCCEEDED and cannot be redriven; start a new run with the same input instead (ami-pipeline run --input FILE)');
    expect(targets(stub, 'DescribeExecution')).toEqual([]);
  });

  it('says when the execution does not exist', async () => {
    stub = await startSfnStub(stubScript('succeeded'));
    const result = await cli(stub, ['status', `${stub.executionArn}-nope`]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^ami-pipeline: ExecutionDoesNotExist: Execution Does Not Exist/);
  });
});
