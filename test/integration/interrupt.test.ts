/**
 * A local run stopped as a user stops it, against moto: Ctrl-C (SIGINT to the CLI's process group, as a terminal
 * sends it) while its targets verify; `kill -9` of the same moment, after which doctor warns and `cleanup` removes
 * what was left; and `run | head -3`, whose reader goes away. Each ends with nothing running and the source unshared.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeImageAttributeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientFactory, sessionNameFor } from '../../functions/shared/clients';
import { manifestSchema } from '../../functions/shared/manifest-schema';
import { conforms } from '../support/run-output';
import { seed } from '../../local/seed';
import { BIN, cliEnv, ROOT, runCli, tempDir, writeJson } from '../support/cli';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const REGION = 'eu-west-1';

describe.skipIf(!MOTO_AVAILABLE)('a local run stopped, killed or cut off', () => {
  const suite = motoSuite();
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = tempDir();
    env = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: REGION, AMI_PIPELINE_LOCAL_EXECUTIONS: join(dir, 'executions') };
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function prepare(name: string) {
    const targets = [{ accountId: uniqueAccount('47'), regions: [REGION] }, { accountId: uniqueAccount('47'), regions: [REGION] }];
    const seeded = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: REGION, sourceImageName: 'ami-pipeline-cli-base', targets });
    const input = writeJson(dir, `${name}.json`, {
      source: { imageId: seeded.sourceImageId, region: REGION },
      targets: targets.map((t) => ({ ...t, kmsKey: 'alias/ami-encryption' })),
    });
    return { input, sourceImageId: seeded.sourceImageId, accounts: targets.map((t) => t.accountId) };
  }

  /** The CLI in its own process group, as a terminal starts it; `onLine` sees its output as it comes. */
  function start(args: string[], onOutput: (text: string, child: ChildProcess) => void) {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      detached: true,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      onOutput(output, child);
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, stdout: output, stderr })),
    );
    return done;
  }

  /** The signal once the targets verify: a moment after StartLaunchCheck began, inside the 4 s WaitForLaunch. */
  const once = (signal: NodeJS.Signals) => {
    let sent = false;
    return (text: string, child: ChildProcess) => {
      const pid = child.pid;
      if (sent || !/ verifying /.test(text) || pid === undefined) return;
      sent = true;
      setTimeout(() => process.kill(-pid, signal), 1500);
    };
  };

  async function leftovers(sourceImageId: string, accounts: string[]) {
    const builder = new EC2Client({ region: REGION });
    const shared = (await builder.send(new DescribeImageAttributeCommand({ ImageId: sourceImageId, Attribute: 'launchPermission' }))).LaunchPermissions ?? [];
    const ledger = ((await builder.send(new DescribeImagesCommand({ ImageIds: [sourceImageId] }))).Images?.[0]?.Tags ?? []).filter((t) => t.Key?.startsWith('ami-pipeline:share:'));
    const inTargets: string[] = [];
    for (const accountId of accounts) {
      const clients = createClientFactory(REGION).target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('inspect') });
      const groups = (await clients.autoScaling(REGION).send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? [];
      const templates = (await clients.ec2(REGION).send(new DescribeLaunchTemplatesCommand({}))).LaunchTemplates ?? [];
      const running = (await clients.ec2(REGION).send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] }))).Reservations ?? [];
      inTargets.push(
        ...groups.map((g) => `group ${g.AutoScalingGroupName ?? ''}`),
        ...templates.filter((t) => t.LaunchTemplateName?.startsWith('ami-pipeline-verify-')).map((t) => `template ${t.LaunchTemplateName ?? ''}`),
        ...running.flatMap((r) => r.Instances ?? []).map((i) => `instance ${i.InstanceId ?? ''}`),
      );
    }
    return { shared: shared.map((p) => p.UserId), ledger: ledger.map((t) => t.Key), inTargets };
  }

  it('on Ctrl-C while verifying removes the launch checks and the share, writes the manifest so far and exits 130', { timeout: 150_000 }, async () => {
    const { input, sourceImageId, accounts } = await prepare('sigint');
    const manifestFile = join(dir, 'sigint-manifest.json');
    const result = await start(['run', '--input', input, '--local', '--endpoint-url', suite.moto.endpoint, '--wait-ms', '4000', '--manifest', manifestFile], once('SIGINT'));

    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toContain('SIGINT: stopping the run');
    expect(result.stderr).toContain('interrupted: removed the launch checks of 2 target(s)');
    expect(result.stderr).toContain('source share: revoked from 2 account(s)');
    expect(result.stderr).toContain('nothing of this run is left running or shared');
    const manifest = conforms(manifestSchema, JSON.parse(readFileSync(manifestFile, 'utf8')), 'the manifest the CLI wrote');
    expect(manifest).toMatchObject({ status: 'ABORTED', sourceShare: { revoked: true } });
    // What each target had made before the stop is kept.
    expect(manifest.results.every((r) => r.imageId?.startsWith('ami-') && r.kmsKeyArn?.startsWith('arn:aws:kms:') && r.grantId)).toBe(true);
    expect(await leftovers(sourceImageId, accounts)).toEqual({ shared: [], ledger: [], inTargets: [] });
  });

  it('killed hard, leaves what doctor then warns of and cleanup removes, after which nothing stale remains', { timeout: 200_000 }, async () => {
    const { input, sourceImageId, accounts } = await prepare('killed');
    const result = await start(['run', '--input', input, '--local', '--endpoint-url', suite.moto.endpoint, '--wait-ms', '4000'], once('SIGKILL'));
    expect(result.signal).toBe('SIGKILL');
    const left = await leftovers(sourceImageId, accounts);
    expect(left.shared.sort()).toEqual([...accounts].sort());
    expect(left.inTargets.filter((l) => l.startsWith('group '))).toHaveLength(2);

    const doctor = await runCli(['doctor', '--input', input, '--endpoint-url', suite.moto.endpoint, '--output', 'json'], env);
    const checks = (JSON.parse(doctor.stdout) as { checks: { check: string; verdict: string; fix?: string }[] }).checks;
    expect(checks.filter((c) => c.check === 'stale-share' || c.check === 'stale-launch-check').map((c) => [c.check, c.verdict])).toEqual([
      ['stale-share', 'warn'],
      ['stale-launch-check', 'warn'],
      ['stale-launch-check', 'warn'],
    ]);
    expect(checks.find((c) => c.check === 'stale-share')?.fix).toBe(`ami-pipeline cleanup --input ${input}`);

    const dry = await runCli(['cleanup', '--input', input, '--endpoint-url', suite.moto.endpoint, '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stdout).toContain('would revoke 2 stale shares');
    expect((await leftovers(sourceImageId, accounts)).shared).toHaveLength(2);

    const cleanup = await runCli(['cleanup', '--input', input, '--endpoint-url', suite.moto.endpoint, '--output', 'json'], env);
    expect(cleanup.code, cleanup.stdout + cleanup.stderr).toBe(0);
    const report = JSON.parse(cleanup.stdout) as { sources: { share: { accountIds: string[]; executions: string[] } }[]; leftovers: { kind: string; action: string }[] };
    expect(report.sources[0]?.share.accountIds.sort()).toEqual([...accounts].sort());
    expect(report.leftovers.map((l) => [l.kind, l.action])).toEqual([
      ['launch-check', 'removed'],
      ['launch-check', 'removed'],
    ]);
    expect(await leftovers(sourceImageId, accounts)).toEqual({ shared: [], ledger: [], inTargets: [] });

    const again = await runCli(['cleanup', '--input', input, '--endpoint-url', suite.moto.endpoint], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing stale remains');
  });

  it('run --local | head -3 neither crashes on the closed pipe nor leaves the source shared', { timeout: 150_000 }, async () => {
    const { input, sourceImageId, accounts } = await prepare('pipe');
    const shell = spawn('bash', ['-c', `"${process.execPath}" "${BIN}" run --input "${input}" --local --endpoint-url ${suite.moto.endpoint} 2>"${dir}/pipe.err" | head -3; echo "exit=\${PIPESTATUS[0]}"`], {
      cwd: ROOT,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    shell.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => shell.once('close', resolve));
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('exit=0');
    expect(readFileSync(join(dir, 'pipe.err'), 'utf8')).not.toContain('EPIPE');
    expect(await leftovers(sourceImageId, accounts)).toEqual({ shared: [], ledger: [], inTargets: [] });
  });
});
