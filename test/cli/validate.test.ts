import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, STUB_INPUT, tempDir, writeJson } from '../support/cli';

describe.concurrent('ami-pipeline validate and usage', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a valid input and counts its account × region pairs', async () => {
    const result = await runCli(['validate', '--input', 'examples/input.json']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe('valid: 3 targets (account × region pairs), one child execution each, 3 at once\n');
  });

  it('accepts an input whose targets come from an SSM parameter', async () => {
    const file = writeJson(dir, 'parameter.json', { source: STUB_INPUT.source, targetsParameter: '/ami-pipeline/targets' });
    const result = await runCli(['validate', '-i', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('valid: targets come from the SSM parameter /ami-pipeline/targets');
  });

  const ou = { organizationalUnitId: 'ou-ab12-34cd56ef', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' };

  it('says that OU targets are resolved at run time', async () => {
    const file = writeJson(dir, 'ou.json', { source: STUB_INPUT.source, targets: [{ accountId: '111111111111', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }, ou] });
    const result = await runCli(['validate', '-i', file]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(
      'valid: 1 target (account × region pairs), one child execution each, 1 at once; ' +
        'the accounts of ou-ab12-34cd56ef are resolved from AWS Organizations at run time (ami-pipeline doctor lists them)\n',
    );
  });

  it('refuses an entry with both accountId and organizationalUnitId (exit 2)', async () => {
    const both = writeJson(dir, 'both.json', { source: STUB_INPUT.source, targets: [{ ...ou, accountId: '111111111111' }] });
    const refused = await runCli(['validate', '-i', both]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('targets[0]: give exactly one of "accountId" (one account) or "organizationalUnitId"');
  });

  it('says when the input file does not exist', async () => {
    const result = await runCli(['validate', '--input', `${dir}/missing.json`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`ami-pipeline: cannot read the input file ${dir}/missing.json: no such file\n`);
  });

  it('says where a file that is not JSON breaks', async () => {
    const file = writeJson(dir, 'broken.json', '{\n  "source": {,\n}');
    const result = await runCli(['validate', '--input', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is not valid JSON: .*\(line 2, column 14\)/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('lists every schema problem with its field and fix', async () => {
    const bad = {
      ...STUB_INPUT,
      targets: [{ accountId: 111111111111, regions: ['eu-west-1'], kmsKey: 'alias/aws/ebs' }],
    };
    const result = await runCli(['validate', '--input', writeJson(dir, 'bad.json', bad)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('The pipeline input is invalid (2 problems):');
    expect(result.stderr).toContain('- targets[0].accountId: must be a string of 12 digits');
    expect(result.stderr).toContain('- targets[0].kmsKey: is an AWS managed key');
    expect(result.stdout).toBe('');
  });

  it.each([
    [['validate', '--input'], '--input needs a value'],
    [['validate', '--input', 'examples/input.json', '--bogus'], 'unknown option --bogus'],
    [['validate', '--input', 'examples/input.json', '--local'], '--local is not an option of validate'],
    [['deploy'], 'unknown command "deploy"'],
    [['run', '--input', 'examples/input.json', '--output', 'yaml'], '--output must be table or json, not "yaml"'],
    [['run', '--input', 'examples/input.json', '--local', '--wait-ms', 'soon'], '--wait-ms must be a whole number'],
  ])('refuses bad usage %j with one line and a hint', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(message);
    expect(lines[1]).toMatch(/^run 'ami-pipeline (\w+ )?--help' for usage$/);
  });

  it('says that --local needs an endpoint', async () => {
    const result = await runCli(['run', '--input', 'examples/input.json', '--local']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--local needs an AWS-compatible endpoint such as moto');
  });

  it('prints the usage for --help, -h and help', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const result = await runCli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('ami-pipeline run --input FILE');
      expect(result.stdout).toContain('ami-pipeline status EXECUTION_ARN');
      expect(result.stdout).toContain('ami-pipeline validate --input FILE');
    }
  });

  it('prints a command\'s own usage and example for COMMAND --help', async () => {
    const result = await runCli(['run', '--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('ami-pipeline run --input FILE [options]');
    expect(result.stdout).toContain('ami-pipeline run --input examples/input.json');
    expect(result.stdout).not.toContain('ami-pipeline status EXECUTION_ARN');
  });
});
