/**
 * The doctor against moto, with a correctly bootstrapped account and with each misconfiguration seeded,
 * and over the in-memory AWS for what moto does not model (an AWS managed key behind the source snapshots).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { doctor, renderDoctor, type DoctorReport } from '../../cli/doctor';
import { createClientFactory, sessionNameFor } from '../../functions/shared/clients';
import { MOTO_BUILDER_ACCOUNT } from '../../local/moto';
import { seed } from '../../local/seed';
import { FakeAws } from '../../bench/fake-aws';
import { startFaultProxy } from '../support/fault-proxy';
import { BUILDER } from '../support/fixtures';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';

const run = promisify(execFile);
const REGION = 'eu-west-1';
const verdictOf = (report: DoctorReport, scope: string, check: string) => report.checks.find((c) => c.scope === scope && c.check === check);

/** The doctor over the in-memory AWS (bench/fake-aws.ts) with a source image, `arrange`d further; the fake is gone after. */
async function doctorOverFake(targets: unknown[], arrange: (aws: FakeAws, imageId: string) => void = () => undefined): Promise<DoctorReport> {
  const aws = new FakeAws();
  try {
    const imageId = aws.addSourceImage(REGION);
    arrange(aws, imageId);
    return await doctor({ source: { imageId, region: REGION }, targets }, createClientFactory(REGION), { pipelineRegion: REGION, builderAccountId: async () => BUILDER });
  } finally {
    aws.restore();
  }
}

describe('the doctor over the in-memory AWS', () => {
  it('fails a source whose snapshots are encrypted with the AWS managed key, with the AWS error and the fix', async () => {
    const report = await doctorOverFake([{ accountId: '111111111111', regions: [REGION], kmsKey: 'alias/ami-encryption' }], (aws, imageId) => {
      const managed = aws.addKey(BUILDER, REGION, 'alias/aws/ebs');
      const key = aws.keys.get(managed);
      if (key) key.manager = 'AWS';
      aws.encryptedSnapshots.set(aws.images.get(imageId)?.snapshotId ?? '', managed);
      aws.addKey('111111111111', REGION);
    });
    const source = verdictOf(report, 'source', 'source-image');
    expect(source?.verdict).toBe('fail');
    expect(source?.message).toContain("can't be shared");
    expect(source?.message).toContain('customer managed key');
    expect(report.verdict).toBe('fail');
    expect(verdictOf(report, `111111111111/${REGION}`, 'kms-key')?.verdict).toBe('pass');
  });
});

describe('the doctor with OU targets', () => {
  it('resolves each OU, reports found, skipped and excluded accounts, and checks every resolved account', async () => {
    const targets = [{ organizationalUnitId: 'ou-ab12-11111111', regions: [REGION], kmsKey: 'alias/ami-encryption', excludeAccountIds: ['333333333333'] }];
    const report = await doctorOverFake(targets, (aws) => {
      aws.organization.set('ou-ab12-11111111', {
        accounts: [{ Id: '111111111111', State: 'ACTIVE' }, { Id: '222222222222', State: 'SUSPENDED' }, { Id: '333333333333', State: 'ACTIVE' }],
        ous: [],
      });
      aws.addKey('111111111111', REGION);
    });
    const ou = verdictOf(report, 'ou-ab12-11111111', 'organization');
    expect(ou?.verdict).toBe('pass');
    expect(ou?.message).toBe('3 account(s) found: 1 targeted (111111111111); skipped, not ACTIVE: 222222222222 (SUSPENDED); excluded: 333333333333');
    expect(verdictOf(report, `111111111111/${REGION}`, 'kms-key')?.verdict).toBe('pass');
    expect(report.checks.filter((c) => c.scope.startsWith('222222222222') || c.scope.startsWith('333333333333'))).toEqual([]);
  });

  it('fails the organization check with the set-up to fix when Organizations refuses', async () => {
    // No such parent: Organizations answers ParentNotFoundException, which is bad input.
    const report = await doctorOverFake([{ organizationalUnitId: 'ou-ab12-99999999', regions: [REGION], kmsKey: 'alias/ami-encryption' }]);
    const check = verdictOf(report, 'organization', 'organization');
    expect(check?.verdict).toBe('fail');
    expect(check?.message).toContain('ou-ab12-99999999 is not an OU or root of the organization');
    expect(report.verdict).toBe('fail');
  });
});

describe.skipIf(!MOTO_AVAILABLE)('the doctor against moto', () => {
  const suite = motoSuite();
  const [good, missingKey, disabledKey, locked] = [uniqueAccount('41'), uniqueAccount('41'), uniqueAccount('41'), uniqueAccount('41')] as [string, string, string, string];
  let sourceImageId: string;
  let keys: Record<string, string>;

  beforeAll(async () => {
    ({ sourceImageId, keys } = await seed({
      endpointUrl: suite.moto.endpoint,
      sourceRegion: REGION,
      sourceImageName: 'ami-pipeline-rerun-base',
      targets: [good, disabledKey, locked].map((accountId) => ({ accountId, regions: [REGION] })),
    }));
    const kms: KMSClient = createClientFactory(REGION).target({ accountId: disabledKey, roleName: 'AmiPipelineTarget', sessionName: sessionNameFor('t') }).kms(REGION);
    // moto's DisableKey takes the key ID only (AWS takes the ARN as well).
    await kms.send(new DisableKeyCommand({ KeyId: keys[`${disabledKey}/${REGION}`]?.split('/').pop() }));
  }, 60_000);

  const input = (accounts: string[]) => ({
    source: { imageId: sourceImageId, region: REGION },
    targets: accounts.map((accountId) => ({ accountId, regions: [REGION], kmsKey: 'alias/ami-encryption' })),
  });
  const deps = { pipelineRegion: REGION, builderAccountId: async () => MOTO_BUILDER_ACCOUNT };

  it('passes a correctly bootstrapped account (moto has no Auto Scaling service-linked role: a warning)', async () => {
    const report = await doctor(input([good]), createClientFactory(REGION), deps);
    const failures = report.checks.filter((c) => c.verdict === 'fail');
    expect(failures).toEqual([]);
    expect(verdictOf(report, 'source', 'source-image')?.verdict).toBe('pass');
    expect(verdictOf(report, `${good}/${REGION}`, 'target-role')?.verdict).toBe('pass');
    expect(verdictOf(report, `${good}/${REGION}`, 'kms-key')?.message).toContain(keys[`${good}/${REGION}`]);
    expect(verdictOf(report, `${good}/${REGION}`, 'key-policy')?.verdict).toBe('pass');
    expect(verdictOf(report, `${good}/${REGION}`, 'subnet')?.verdict).toBe('pass');
    expect(renderDoctor(report)).toContain('ready to run');
  });

  it('fails a missing key and a disabled key, each with its fix, and passes the good account beside them', async () => {
    const report = await doctor(input([good, missingKey, disabledKey]), createClientFactory(REGION), deps);
    expect(report.verdict).toBe('fail');
    const missing = verdictOf(report, `${missingKey}/${REGION}`, 'kms-key');
    expect(missing?.verdict).toBe('fail');
    expect(missing?.awsError).toContain('NotFoundException');
    expect(missing?.fix).toContain('templates/target-account.yml');
    const disabled = verdictOf(report, `${disabledKey}/${REGION}`, 'kms-key');
    expect(disabled?.verdict).toBe('fail');
    expect(disabled?.message).toContain('Disabled');
    expect(report.checks.filter((c) => c.scope === `${good}/${REGION}` && c.verdict === 'fail')).toEqual([]);
  });

  it('fails a target whose role cannot be assumed', async () => {
    const proxy = await startFaultProxy(suite.moto.endpoint, { unassumableAccounts: [locked] });
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    try {
      const report = await doctor(input([locked]), createClientFactory(REGION), deps);
      const role = verdictOf(report, `${locked}/${REGION}`, 'target-role');
      expect(role?.verdict).toBe('fail');
      expect(role?.message).toContain(`arn:aws:iam::${locked}:role/AmiPipelineTarget`);
      expect(report.checks.filter((c) => c.scope === `${locked}/${REGION}`)).toHaveLength(1);
    } finally {
      process.env.AWS_ENDPOINT_URL = suite.moto.endpoint;
      await proxy.close();
    }
  });

  it('is a CLI command: a table, exit 1 on a failure, exit 2 for a key of another account', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify(input([good, missingKey])));
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: REGION };
    const failed = await run('node', ['bin/ami-pipeline.mjs', 'doctor', '--input', file, '--endpoint-url', suite.moto.endpoint], { env }).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/SCOPE\s+CHECK\s+VERDICT/);
    expect(failed.stdout).toContain(`${missingKey}/${REGION}`);
    expect(failed.stdout).toContain('FAIL');
    expect(failed.stdout).toContain('fix: ');

    writeFileSync(file, JSON.stringify({ ...input([good]), targets: [{ accountId: good, regions: [REGION], kmsKey: keys[`${disabledKey}/${REGION}`] }] }));
    const refused = await run('node', ['bin/ami-pipeline.mjs', 'doctor', '--input', file, '--endpoint-url', suite.moto.endpoint], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('targets[0].kmsKey');
    expect(refused.stderr).toContain('own');
  }, 60_000);
});
