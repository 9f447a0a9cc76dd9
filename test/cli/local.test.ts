import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../functions/shared/manifest-schema';
import { conforms } from '../support/run-output';
import { seed } from '../../local/seed';
import { MOTO_AVAILABLE, motoSuite, uniqueAccount } from '../support/moto';
import { runCli, tempDir, writeJson } from '../support/cli';

describe.skipIf(!MOTO_AVAILABLE)('ami-pipeline run --local against moto', () => {
  const suite = motoSuite();

  it('runs the real state machine and bundles, shows the phases and ends with a SUCCEEDED manifest', { timeout: 120_000 }, async () => {
    const targets = [
      { accountId: uniqueAccount('31'), regions: ['eu-west-1'] },
      { accountId: uniqueAccount('31'), regions: ['us-east-1'] },
    ];
    const seeded = await seed({ endpointUrl: suite.moto.endpoint, sourceRegion: 'eu-west-1', sourceImageName: 'ami-pipeline-cli-base', targets });
    const dir = tempDir();
    const input = writeJson(dir, 'input.json', {
      source: { imageId: seeded.sourceImageId, region: 'eu-west-1' },
      targets: targets.map((t) => ({ ...t, kmsKey: 'alias/ami-encryption' })),
    });
    const manifestFile = `${dir}/manifest.json`;
    const tmp = `${dir}/tmp`;
    mkdirSync(tmp);

    const result = await runCli(
      ['run', '--input', input, '--local', '--endpoint-url', suite.moto.endpoint, '--output', 'json', '--manifest', manifestFile],
      { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1', TMPDIR: tmp },
    );

    expect(result.code, result.stderr).toBe(0);
    const manifest = conforms(manifestSchema, JSON.parse(result.stdout), 'the manifest the CLI wrote');
    expect(manifest).toMatchObject({ status: 'SUCCEEDED', sourceShare: { revoked: true } });
    expect(manifest.results.map((r) => [r.accountId, r.region, r.status, r.launchCheck?.state])).toEqual(
      targets.map((t) => [t.accountId, t.regions[0], 'succeeded', 'verified']),
    );
    expect(manifest.results.every((r) => r.imageId?.startsWith('ami-') && r.kmsKeyArn === seeded.keys[`${r.accountId}/${r.region}`])).toBe(true);
    expect(JSON.parse(readFileSync(manifestFile, 'utf8'))).toEqual(manifest);

    const progress = result.stderr.split('\n');
    expect(progress).toContain('run: resolving the source image');
    for (const { accountId, regions } of targets) {
      const phases = progress.filter((l) => l.startsWith(`${accountId} ${regions[0]} `)).map((l) => l.split(' ')[2]);
      expect(phases).toEqual(['checking', 'copying', 'granting', 'verifying', 'publishing', 'done']);
    }
    expect(progress).not.toContainEqual(expect.stringContaining('\x1b['));
    // The run's bundle folder is gone once it has ended.
    expect(readdirSync(tmp).filter((n) => n.startsWith('ami-pipeline-bundles-'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
