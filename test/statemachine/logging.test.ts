/** Every log line of a run is structured, carries the run's context, and never holds credentials. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rootLogger } from '../../functions/shared/logger';
import { FakeAws } from '../../bench/fake-aws';
import { ACCOUNT_A, ACCOUNT_B } from '../support/fixtures';
import { runDefinition } from '../../local/asl';
import { pipelineHandlers } from '../../bench/handlers';

let aws: FakeAws;
let lines: string[];

beforeEach(() => {
  aws = new FakeAws();
  lines = [];
  rootLogger.setLogLevel('DEBUG');
  const capture = (chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  // Powertools writes INFO to stdout and ERROR to stderr.
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
});
afterEach(() => {
  vi.restoreAllMocks();
  rootLogger.setLogLevel('SILENT');
  aws.restore();
});

describe('the logs of a run', () => {
  it('are JSON lines with the execution, account and region, and contain no credentials or session tokens', async () => {
    for (const a of [ACCOUNT_A, ACCOUNT_B]) aws.addKey(a, 'eu-west-1');
    aws.failingLaunches.set(`${ACCOUNT_B}/eu-west-1`, 'Client.InternalError: Client error on launch');
    const input = {
      source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' },
      targets: [ACCOUNT_A, ACCOUNT_B].map((accountId) => ({ accountId, regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' })),
      externalId: 'external-id-for-tests',
    };
    await runDefinition(input, pipelineHandlers(), { executionName: 'logged-run' });
    expect(lines.length).toBeGreaterThan(20);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) {
      expect(r.service).toBe('encrypted-ami-pipeline');
      expect(r.executionName).toBe('logged-run');
    }
    const perTarget = records.filter((r) => r.step === 'CopyEncrypt' || r.step === 'CreateKmsGrant' || r.step === 'VerifyLaunch');
    expect(perTarget.length).toBeGreaterThan(0);
    for (const r of perTarget) {
      expect(r.accountId).toMatch(/^\d{12}$/);
      expect(r.region).toBe('eu-west-1');
    }
    // Concurrent iterations keep their own context: the failure is logged under the account it happened in.
    const failure = records.find((r) => r.level === 'ERROR' && r.errorName === 'LaunchFailedError');
    expect(failure?.accountId).toBe(ACCOUNT_B);
    expect(String(failure?.errorMessage)).toContain(ACCOUNT_B);
    const all = lines.join('\n');
    expect(all).not.toContain('secret-for-tests');
    expect(all).not.toContain('token-1');
    expect(all).not.toContain('token-2');
    expect(all).not.toMatch(/ASIA\d{12}/);
    expect(all).not.toMatch(/SecretAccessKey|SessionToken|sessionToken|secretAccessKey/);
    expect(all).not.toContain('external-id-for-tests');
  });
});
