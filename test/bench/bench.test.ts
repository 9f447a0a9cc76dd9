/**
 * `npm run bench --quick` in-process: both pipelines at N=1 and N=10, T=10, on the scripted backend. Checks that
 * the harness measures something real (not the numbers the team's goals ask for; those are the bench's output).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runBench } from '../../bench/bench';
import { chartSvg } from '../../bench/chart';
import { costOf, functionMemoryMb, PRICES } from '../../bench/cost';
import { formatMarkdown, formatText, type BenchResults } from '../../bench/report';
import { LAMBDA_MS } from '../../bench/scenario';

let results: BenchResults;
beforeAll(async () => {
  results = await runBench({ quick: true, bundles: false });
}, 60_000);

describe('the quick benchmark', () => {
  it('runs ours and the baseline for every scenario of the quick grid', () => {
    const keys = results.scenarios.map((r) => `${r.variant} ${r.targets} ${r.copyMinutes}`).sort();
    expect(keys).toEqual(['baseline 1 10', 'baseline 10 10', 'ours 1 10', 'ours 10 10']);
  });

  it('sees every target succeed, each copy detected no earlier than it was ready', () => {
    for (const r of results.scenarios) {
      expect(r.succeeded, `${r.variant} N=${r.targets}`).toBe(r.targets);
      expect(r.failures).toEqual({});
      expect(r.detection.samples).toBe(r.targets);
      expect(r.detection.medianSeconds).toBeGreaterThanOrEqual(0);
      expect(r.detection.maxSeconds).toBeGreaterThanOrEqual(r.detection.medianSeconds ?? 0);
    }
  });

  it('counts transitions, invocations, calls and history events from the run', () => {
    for (const r of results.scenarios) {
      expect(r.transitionsPerTarget).toBeGreaterThan(10);
      expect(Number.isInteger(r.transitions)).toBe(true);
      expect(r.lambdaInvocations).toBeGreaterThan(0);
      expect(r.lambdaByFunction.copyEncrypt).toBeGreaterThanOrEqual(2 * r.targets);
      expect(r.apiCallsByOperation['ec2:CopyImage']).toBeGreaterThanOrEqual(1);
      expect(r.maxHistoryEvents).toBeGreaterThan(r.transitionsPerTarget);
      expect(r.executions).toBeGreaterThanOrEqual(2);
      expect(r.makespanSeconds).toBeGreaterThanOrEqual(r.idealSeconds * 0.9);
    }
  });

  it('makes the baseline poll more than ours at T=10', () => {
    for (const c of results.comparisons) {
      expect(c.transitionsRatio, `N=${c.targets}`).toBeLessThan(1);
      expect(c.apiCallsRatio, `N=${c.targets}`).toBeLessThan(1);
    }
    expect(results.comparisons).toHaveLength(2);
  });

  it('prices each run in dollars from what it used: transitions, Lambda requests and GB-seconds at the configured memory, S3 requests', () => {
    const memory = functionMemoryMb();
    expect(memory.copyEncrypt).toBe(256);
    expect(memory.recordManifest).toBe(512);
    for (const r of results.scenarios) {
      expect(r.cost.stepFunctions).toBeCloseTo(r.transitions * PRICES.stepFunctionsPerTransition, 12);
      expect(r.cost.lambdaRequests).toBeCloseTo(r.lambdaInvocations * PRICES.lambdaPerRequest, 12);
      // Every invocation is at least its fixed latency: duration is billed on each function's own memory.
      const floor = Object.entries(r.lambdaByFunction).reduce((gbs, [fn, count]) => gbs + ((memory[fn] ?? 0) / 1024) * ((count * LAMBDA_MS) / 1000), 0);
      expect(r.cost.lambdaGbSeconds).toBeGreaterThanOrEqual(floor);
      // The runs bucket: the targets file and the manifest written, ResultWriter's files written and read back.
      expect(r.s3Requests.PutObject).toBeGreaterThanOrEqual(3);
      expect(r.s3Requests.GetObject).toBeGreaterThanOrEqual(2);
      expect(r.cost.total).toBeCloseTo(r.cost.stepFunctions + r.cost.lambdaRequests + r.cost.lambdaDuration + r.cost.s3, 12);
      expect(r.costPerTarget).toBeCloseTo(r.cost.total / r.targets, 12);
    }
    for (const c of results.comparisons) expect(c.costRatio, `N=${c.targets}`).toBeLessThan(1);
    const fixed = costOf({ transitions: 1000, lambdaByFunction: { notify: 2 }, lambdaBusyMsByFunction: { notify: 2000 }, s3Requests: { PutObject: 1000, GetObject: 1000 } }, { notify: 1024 });
    expect(fixed.stepFunctions).toBeCloseTo(0.025, 12);
    expect(fixed.lambdaGbSeconds).toBe(2);
    expect(fixed.s3).toBeCloseTo(0.005 + 0.0004, 12);
  });

  it('reports each goal, unmeasured where the quick grid lacks the scenario', () => {
    expect(results.goals).toHaveLength(5);
    expect(results.goals[0]?.met).toBeNull();
    expect(results.goals.slice(3).every((g) => typeof g.met === 'boolean')).toBe(true);
    expect(formatText(results)).toContain('== Goals');
    expect(formatMarkdown(results)).toContain('| N | T min | variant |');
    expect(chartSvg(results.chart.points, results.chart.targets)).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });
});
