/**
 * Key replacement over moto, driven through the CLI as a user would: distribute and publish with the first key,
 * then `ami-pipeline rekey --local`, then read back each account: the parameter points at a copy on the new key,
 * the Auto Scaling grant is on the new key and the pipeline's grant on the old key is revoked.
 * moto does not encrypt copies (CopyImage ignores the key): which key a copy is on is read from the pipeline's
 * ami-pipeline:kms-key tag, and the re-encryption itself is covered by test/statemachine/rekey.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { ListGrantsCommand } from '@aws-sdk/client-kms';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { createClientFactory, sessionNameFor, type Clients } from '../../functions/shared/clients';
import { manifestSchema } from '../../functions/shared/manifest-schema';
import { conforms } from '../support/run-output';
import { runLocal } from '../../local/runner';
import { seed } from '../../local/seed';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGION = 'eu-west-1';
const PARAMETER = '/ami-pipeline/rekey-test/latest';
const ASG = (account: string) => `arn:aws:iam::${account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ami-pipeline.mjs', ...args], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: REGION },
      stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe.skipIf(!MOTO_AVAILABLE)('ami-pipeline rekey against moto', () => {
  const accounts = [uniqueAccount('71'), uniqueAccount('71')];
  const inside = (accountId: string): Clients =>
    createClientFactory(REGION).target({ accountId, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('inspect') });

  const suite = motoSuite();

  it('moves the parameter and the Auto Scaling grant to the new key and revokes the old grant', async () => {
    const targets = accounts.map((accountId) => ({ accountId, regions: [REGION] }));
    const first = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: REGION, sourceImageName: 'ami-pipeline-rekey-base-1', targets });
    const second = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: REGION, sourceImageName: 'ami-pipeline-rekey-base-1', targets, keyAlias: 'alias/ami-encryption-2' });
    const distributed = await runLocal(
      {
        source: { imageId: first.sourceImageId, region: REGION },
        targets: accounts.map((accountId) => ({ accountId, regions: [REGION], kmsKey: 'alias/ami-encryption' })),
        publish: { parameterName: PARAMETER } },
      { endpointUrl: suite.moto.endpoint, region: REGION },
    );
    expect(distributed.manifest?.status).toBe('SUCCEEDED');

    const dir = mkdtempSync(join(tmpdir(), 'rekey-'));
    writeFileSync(
      join(dir, 'rekey.json'),
      JSON.stringify({ targets: accounts.map((accountId) => ({ accountId, regions: [REGION], kmsKey: 'alias/ami-encryption-2' })), publish: { parameterName: PARAMETER } }),
    );
    const result = await cli(['rekey', '--input', join(dir, 'rekey.json'), '--local', '--endpoint-url', suite.moto.endpoint, '--region', REGION, '--output', 'json', '--manifest', join(dir, 'manifest.json')]);
    expect(result.stderr).toContain('publishing');
    expect(result.code).toBe(0);
    const manifest = conforms(manifestSchema, JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), 'the manifest the CLI wrote');
    expect(manifest.status).toBe('SUCCEEDED');

    for (const accountId of accounts) {
      const clients = inside(accountId);
      const oldKey = first.keys[`${accountId}/${REGION}`] ?? '';
      const newKey = second.keys[`${accountId}/${REGION}`] ?? '';
      const rekeyed = manifest.results.find((r) => r.accountId === accountId);
      expect(rekeyed?.kmsKeyArn).toBe(newKey);
      const parameter = await clients.ssm(REGION).send(new GetParameterCommand({ Name: PARAMETER }));
      expect(parameter.Parameter?.Value).toBe(rekeyed?.imageId);
      expect(parameter.Parameter?.Value).not.toBe(distributed.manifest?.results.find((r) => r.accountId === accountId)?.imageId);
      const image = (await clients.ec2(REGION).send(new DescribeImagesCommand({ ImageIds: [rekeyed?.imageId ?? ''] }))).Images?.[0];
      expect(image?.OwnerId).toBe(accountId);
      expect(image?.Tags).toEqual(expect.arrayContaining([{ Key: 'ami-pipeline:kms-key', Value: newKey }]));
      const onNew = (await clients.kms(REGION).send(new ListGrantsCommand({ KeyId: newKey }))).Grants ?? [];
      expect(onNew.filter((g) => g.GranteePrincipal === ASG(accountId))).toHaveLength(1);
      const onOld = (await clients.kms(REGION).send(new ListGrantsCommand({ KeyId: oldKey }))).Grants ?? [];
      expect(onOld.filter((g) => g.Name?.startsWith('ami-pipeline-autoscaling-'))).toEqual([]);
    }

    // Running it again makes nothing new.
    const again = await cli(['rekey', '--input', join(dir, 'rekey.json'), '--local', '--endpoint-url', suite.moto.endpoint, '--region', REGION, '--manifest', join(dir, 'again.json')]);
    expect(again.code).toBe(0);
    const repeat = conforms(manifestSchema, JSON.parse(readFileSync(join(dir, 'again.json'), 'utf8')), 'the manifest the CLI wrote');
    expect(repeat.results.map((r) => r.imageId).sort()).toEqual(manifest.results.map((r) => r.imageId).sort());
  }, 240_000);
});
