/**
 * functions/shared/payload.ts and the validation built on it: an input whose run cannot carry its payloads within
 * AWS's limits is refused before any AWS call, naming the payload and the limit; the model is an upper bound of
 * what a run really carries (checked against a run of the real definitions through the limit-holding runner).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readInputFile } from '../../cli/input';
import { InvalidInputError } from '../../functions/shared/errors';
import { inputSchema, parseInput } from '../../functions/shared/input';
import { FAILURE_CAUSE_CHARS, mostPairsThatFit, payloadsOverLimit, STATE_PAYLOAD_BYTES, worstCasePayloads } from '../../functions/shared/payload';
import { runDefinition, type Json } from '../../local/asl';
import { payloadBytes } from '../../local/limits';
import { FakeAws } from '../../bench/fake-aws';
import { pipelineHandlers } from '../../bench/handlers';

const REGIONS = ['eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'us-east-1', 'us-east-2', 'us-west-2', 'ap-southeast-2', 'ca-central-1'];
const account = (n: number) => String(500000000000 + n);

/** `accounts` accounts in `regions`, with one alias for all, or the key reference `key(account, region)` per region. */
function raw(accounts: number, regions: readonly string[] = REGIONS, key?: (a: string, r: string) => string): Record<string, unknown> {
  return {
    source: { imageId: 'ami-0123456789abcdef0', region: 'eu-west-1' },
    targets: Array.from({ length: accounts }, (_, i) => ({
      accountId: account(i),
      regions,
      kmsKey: key ? Object.fromEntries(regions.map((r) => [r, key(account(i), r)])) : 'alias/ami-encryption',
    })),
    verify: { mode: 'none' },
    publish: { parameterName: '/ami-pipeline/{sourceName}/latest' },
  };
}

function problems(input: unknown): string[] {
  try {
    parseInput(input);
    return [];
  } catch (error) {
    if (error instanceof InvalidInputError) return [...error.issues];
    throw error;
  }
}

describe('the worst-case payloads of an input', () => {
  it('refuses an execution input over 262,144 bytes with its size (long alias ARNs, one per region)', () => {
    const longAlias = (a: string, r: string) => `arn:aws:kms:${r}:${a}:alias/${'k'.repeat(250)}`;
    const big = raw(100, REGIONS, longAlias);
    const bytes = payloadBytes(big);
    expect(bytes).toBeGreaterThan(STATE_PAYLOAD_BYTES);
    expect(problems(big)).toEqual([expect.stringContaining(`(input): is ${bytes.toLocaleString('en-US')} bytes as JSON, over Step Functions' 262,144-byte limit`)]);
  });

  it('refuses 1,000 targets that the current fan-out cannot carry, naming each payload over its limit and the most that fit', () => {
    const input = raw(100);
    const [problem, ...more] = problems(input);
    expect(more).toEqual([]);
    expect(problem).toMatch(/^targets: 1,000 account-region pairs do not fit AWS's payload limits at worst: /);
    expect(problem).toContain("ReportPartial's output (the run's execution) would be");
    expect(problem).toContain('(limit 262,144: Step Functions\' maximum input or output size for a task, state or execution)');
    expect(problem).toContain("RunFailedError's cause (the run's summary) would be");
    expect(problem).toContain("(limit 32,768: Step Functions' maximum length of a failure's cause)");
    expect(problem).toMatch(/split the targets over runs of at most \d{2,3} pairs each/);
  });

  it('accepts what fits, and the most that fit is the boundary: one pair more does not', () => {
    expect(payloadsOverLimit(parseInput(raw(12)))).toEqual([]);
    const fit = mostPairsThatFit(inputSchema.parse(raw(100)));
    expect(fit).toBeGreaterThan(100);
    expect(fit).toBeLessThan(1000);
    /** The first `n` pairs of 100 accounts x 10 regions. */
    const first = (n: number) => {
      const all = raw(100) as { targets: { regions: string[] }[] };
      const targets = all.targets.slice(0, Math.ceil(n / 10)).map((t, i) => ({ ...t, regions: REGIONS.slice(0, Math.min(10, n - i * 10)) }));
      return { ...all, targets };
    };
    expect(problems(first(fit))).toEqual([]);
    expect(problems(first(fit + 1))).toEqual([expect.stringContaining(`split the targets over runs of at most ${fit} pairs each`)]);
  });

  it('grows with what the settings add to every target', () => {
    const plain = worstCasePayloads(parseInput(raw(3)));
    const templates = worstCasePayloads(parseInput({ ...raw(3), publish: { parameterName: '/ami-pipeline/{sourceName}/latest', launchTemplates: Array.from({ length: 20 }, (_, i) => `template-${'t'.repeat(100)}-${i}`) } }));
    const size = (list: typeof plain, what: string) => list.find((p) => p.payload.startsWith(what))?.size ?? 0;
    expect(size(templates, "DistributeBatch's output")).toBeGreaterThan(size(plain, "DistributeBatch's output") + 20 * 100);
  });
});

describe('the model against a run', () => {
  let aws: FakeAws;
  afterEach(() => aws.restore());

  it('bounds every payload of a run of the real definitions from above', async () => {
    aws = new FakeAws();
    const accounts = Array.from({ length: 3 }, (_, i) => account(i));
    for (const a of accounts) for (const r of REGIONS.slice(0, 4)) aws.addKey(a, r);
    const input: Json = { ...(raw(3, REGIONS.slice(0, 4)) as Record<string, Json>), source: { imageId: aws.addSourceImage('eu-west-1'), region: 'eu-west-1' } };
    const model = worstCasePayloads(parseInput(input), 'bounds');
    const bound = (what: string) => model.find((p) => p.payload.startsWith(what))?.size ?? 0;

    const run = await runDefinition(input, pipelineHandlers(), { executionName: 'bounds' });
    expect(run.error).toBeUndefined();
    const largest = (machine: string) =>
      Math.max(...run.executions.filter((e) => e.stateMachine === machine).flatMap((e) => e.events.flatMap((ev) => [ev.state?.input, ev.state?.output].filter((v) => v !== undefined).map(payloadBytes))));
    expect(largest('PipelineStateMachine')).toBeLessThanOrEqual(bound("ReportPartial's output"));
    expect(largest('DistributeStateMachine')).toBeLessThanOrEqual(bound("DistributeBatch's output"));
    expect(JSON.stringify(run.output).length).toBeLessThanOrEqual(model.find((p) => p.unit === 'characters')?.size ?? 0);
    expect(FAILURE_CAUSE_CHARS).toBe(32_768);
  });
});

describe('reading the input file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'payload-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops reading a device at 262,144 bytes and says so', () => {
    expect(() => readInputFile('/dev/zero')).toThrow(/the input file \/dev\/zero is larger than 262,144 bytes, Step Functions' limit for an execution input/);
  });

  it('refuses a file one byte over 262,144 bytes, and reads one of exactly 262,144', () => {
    const at = join(dir, 'at.json');
    const body = JSON.stringify(raw(1, ['eu-west-1']));
    writeFileSync(at, body + ' '.repeat(STATE_PAYLOAD_BYTES - body.length));
    expect(readInputFile(at).targets).toHaveLength(1);
    const over = join(dir, 'over.json');
    writeFileSync(over, body + ' '.repeat(STATE_PAYLOAD_BYTES - body.length + 1));
    expect(() => readInputFile(over)).toThrow(/larger than 262,144 bytes/);
  });
});
