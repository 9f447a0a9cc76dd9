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
import { inputSchema, parseInput, payloadProblems } from '../../functions/shared/input';
import { FAILURE_CAUSE_CHARS, mostPairsThatFit, payloadsOverLimit, STATE_PAYLOAD_BYTES, worstCasePayloads } from '../../functions/shared/payload';
import { buildManifest } from '../../functions/shared/manifest';
import type { OuExpansion } from '../../functions/shared/manifest-schema';
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

  it('accepts 1,000 targets at worst (1,000 accounts, every source tag copied): each payload under its limit, none growing past the share lists', () => {
    const wide = (accounts: number) => ({ ...raw(accounts, ['eu-west-1']), copy: { copySourceTags: true } });
    const model = worstCasePayloads(parseInput(wide(1000)));
    expect(problems(wide(1000))).toEqual([]);
    for (const p of model) expect(p.size, p.payload).toBeLessThanOrEqual(p.limit);
    const small = worstCasePayloads(parseInput(wide(10)));
    const size = (list: typeof model, what: string) => list.find((p) => p.payload.startsWith(what))?.size ?? Number.NaN;
    // The summary lists at most 50 failed targets and 20 entries of each share list: it stops growing. FailRun's
    // Lambda error carries it twice (its message, and the first line of its trace), escaped: still under the limit.
    expect(size(model, "RunFailedError's cause")).toBeLessThan(FAILURE_CAUSE_CHARS);
    expect(size(model, "RunFailedError's cause") - size(worstCasePayloads(parseInput(wide(50))), "RunFailedError's cause")).toBeLessThan(20);
    // What grows with the accounts is the source's share lists, carried by the run and by each child.
    expect(size(model, "a target's state") - size(small, "a target's state")).toBeGreaterThan(990 * 8 * 15);
    expect(size(model, "RecordManifest's output")).toBeGreaterThan(size(model, "a target's state"));
  });

  it('counts the most pairs that fit, and refuses past it naming the payload, its size and the limit', () => {
    expect(payloadsOverLimit(parseInput(raw(100)))).toEqual([]);
    expect(mostPairsThatFit(inputSchema.parse(raw(100)))).toBe(1000);
    const over = worstCasePayloads(parseInput(raw(3))).map((p) => ({ ...p, limit: p.payload.startsWith("a target's state") ? 100 : p.limit }));
    expect(over.filter((p) => p.size > p.limit).map((p) => p.payload)).toEqual(["a target's state (its child execution)"]);
  });

  it('grows with what the settings add to every target', () => {
    const plain = worstCasePayloads(parseInput(raw(3)));
    const templates = worstCasePayloads(parseInput({ ...raw(3), publish: { parameterName: '/ami-pipeline/{sourceName}/latest', launchTemplates: Array.from({ length: 20 }, (_, i) => `template-${'t'.repeat(100)}-${i}`) } }));
    const size = (list: typeof plain, what: string) => list.find((p) => p.payload.startsWith(what))?.size ?? 0;
    expect(size(templates, "a target's state")).toBeGreaterThan(size(plain, "a target's state") + 20 * 100);
  });
});

describe('what organizationalUnitId entries expanded to', () => {
  /** One OU entry at its largest in the run's state: 1,000 accounts targeted, 100 listed in each other list. */
  const expansion = (i: number): OuExpansion => ({
    organizationalUnitId: `ou-${String(i).padStart(4, '0')}-${'y'.repeat(32)}`,
    found: 5000,
    targeted: Array.from({ length: 1000 }, (_, n) => account(n)),
    skipped: Array.from({ length: 100 }, (_, n) => ({ accountId: account(2000 + n), state: 'PENDING_CLOSURE' })),
    excluded: Array.from({ length: 100 }, (_, n) => account(3000 + n)),
    coveredElsewhere: Array.from({ length: 100 }, (_, n) => account(4000 + n)),
    notListed: { skipped: 900, excluded: 900, coveredElsewhere: 900 },
  });
  const resolved = (accounts: number) => raw(accounts, ['eu-west-1']);

  it("rides in the run's state, so ResolveSource refuses an expansion that cannot fit, naming the fix", () => {
    const input = parseInput(resolved(1000));
    expect(payloadProblems(resolved(1000), input, [expansion(1)])).toEqual([]);
    const many = Array.from({ length: 12 }, (_, i) => expansion(i));
    const problems = payloadProblems(resolved(1000), input, many);
    expect(problems).toEqual([expect.stringContaining("ResolveSource's output (the run's execution) would be")]);
    expect(problems[0]).toContain('262,144');
    // Without the expansion the same resolved accounts fit: it is the organization's lists that do not.
    expect(payloadProblems(resolved(1000), input)).toEqual([]);
  });

  it('stays out of the summary (a failed run\'s cause, the completion event) and goes whole into the manifest', () => {
    const organization = Array.from({ length: 3 }, (_, i) => expansion(i));
    const location = { bucket: 'runs', key: 'runs/r/manifest.json', uri: 's3://runs/runs/r/manifest.json' };
    const { manifest, summary } = buildManifest({ executionName: 'r', source: null, sourceShare: null, organization, targetCount: 1000, mapRunArn: null, location, children: [] });
    expect(summary).not.toHaveProperty('organization');
    expect(JSON.stringify(summary).length).toBeLessThan(1_000);
    expect(manifest.organization).toEqual(organization);
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
    const largest = (which: (e: (typeof run.executions)[number]) => boolean) =>
      Math.max(...run.executions.filter(which).flatMap((e) => e.events.flatMap((ev) => [ev.state?.input, ev.state?.output].filter((v) => v !== undefined).map(payloadBytes))));
    expect(largest((e) => e.mapState === undefined)).toBeLessThanOrEqual(bound("RecordManifest's output"));
    expect(largest((e) => e.mapState !== undefined)).toBeLessThanOrEqual(bound("a target's state"));
    expect(JSON.stringify(run.output).length).toBeLessThanOrEqual(bound("RunFailedError's cause"));
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
