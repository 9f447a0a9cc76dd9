/** What the CLI reads back of a finished execution (its summary, then the manifest in S3), checked against their schemas. */
import type { DescribeExecutionCommandOutput } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { manifestOf, outcomeOfExecution } from '../../cli/deployed';
import { CliError } from '../../cli/errors';
import { stubManifest, stubSummary } from '../support/cli';

const manifest = stubManifest(true);
const failed: DescribeExecutionCommandOutput = {
  executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:encrypted-ami-pipeline-prod:cli-test-run',
  stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:encrypted-ami-pipeline-prod',
  name: 'cli-test-run',
  startDate: new Date('2026-11-30T10:00:00Z'),
  status: 'FAILED',
  error: 'RunFailedError',
  cause: JSON.stringify(stubSummary(manifest)),
  $metadata: {},
};

describe('reading a finished run back', () => {
  it('gives the manifest the summary points at', async () => {
    const outcome = await outcomeOfExecution(failed, () => Promise.resolve(JSON.parse(JSON.stringify(manifest)) as unknown));
    expect(outcome.manifest).toEqual(manifest);
  });

  it('refuses a stored manifest that does not match the schema, naming the field', async () => {
    const edited = { ...manifest, results: [{ ...manifest.results[0], status: 'done' }] };
    const read = manifestOf(stubSummary(manifest), () => Promise.resolve(edited));
    await expect(read).rejects.toThrow(CliError);
    await expect(read).rejects.toThrow(/the manifest s3:\/\/\S+ does not match schema\/manifest\.schema\.json: results\.0\.status: /);
  });

  it('refuses a RunFailedError cause that looks like a summary but does not match, naming the field', async () => {
    const cause = JSON.stringify({ ...stubSummary(manifest), counts: { targets: 'two' } });
    await expect(outcomeOfExecution({ ...failed, cause }, () => Promise.reject(new Error('not read')))).rejects.toThrow(
      /the RunFailedError cause of execution cli-test-run does not match schema\/run-summary\.schema\.json: counts\.targets: /,
    );
  });
});
