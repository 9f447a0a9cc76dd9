/** What `ami-pipeline doctor` writes: its report alone on stdout, and one clear line when there are no credentials. */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { doctorCommand } from '../../cli/doctor';
import { rootLogger } from '../../functions/shared/logger';
import { runCli, tempDir, writeJson } from '../support/cli';
import { FakeAws } from '../../bench/fake-aws';

const REGION = 'eu-west-1';

describe('ami-pipeline doctor output', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    vi.restoreAllMocks();
    rootLogger.setLogLevel('SILENT');
  });

  it.each(['json', 'table'] as const)('writes only its report to stdout (--output %s), though the functions it runs log', async (output) => {
    const aws = new FakeAws();
    try {
      const imageId = aws.addSourceImage(REGION);
      aws.addKey('111111111111', REGION);
      const input = writeJson(dir, `input-${output}.json`, {
        source: { imageId, region: REGION },
        targets: [{ accountId: '111111111111', regions: [REGION], kmsKey: 'alias/ami-encryption' }],
      });
      // As outside the tests, where the functions' logger is at INFO: "Source resolved" is logged while the doctor runs.
      rootLogger.setLogLevel('INFO');
      const direct: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        direct.push(String(chunk));
        return true;
      });
      let stdout = '';
      const code = await doctorCommand({ input, output, region: REGION }, { stdout: { write: (t: string) => (stdout += t) } });
      vi.restoreAllMocks();
      expect(direct).toEqual([]);
      expect(code).toBe(0);
      if (output === 'json') expect(JSON.parse(stdout)).toMatchObject({ verdict: expect.stringMatching(/^(pass|warn)$/) });
      else expect(stdout).toMatch(/^SCOPE +CHECK +VERDICT +DETAIL\n/);
      expect(stdout).not.toContain('"level"');
      expect(rootLogger.getLevelName()).toBe('INFO');
    } finally {
      aws.restore();
    }
  });

  it('says that no credentials were found, and how to give them, instead of blaming every target role', async () => {
    // No keys, no profile, no instance metadata; and an endpoint nothing listens on, which must not be reached.
    const result = await runCli(['doctor', '--input', 'examples/input.json', '--endpoint-url', 'http://127.0.0.1:9'], {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
    });
    expect(result.stdout).toBe('');
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ami-pipeline: no AWS credentials found \(.+\): set AWS_PROFILE/);
    expect(result.stderr).not.toContain('templates/target-account.yml');
  });
});
