/**
 * `npm run bench --quick` in-process: both pipelines at N=1 and N=10, T=10, on the scripted backend. Checks that
 * the harness measures something real (not the numbers the team's goals ask for; those are the bench's output).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runBench } from '../../bench/bench';
import { chartSvg } from '../../bench/chart';
import { formatMarkdown, formatText, type BenchResults } from '../../bench/report';

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

  it('reports each goal, unmeasured where the quick grid lacks the scenario', () => {
    expect(results.goals).toHaveLength(5);
    expect(results.goals[0]?.met).toBeNull();
    expect(results.goals.slice(3).every((g) => typeof g.met === 'boolean')).toBe(true);
    expect(formatText(results)).toContain('== Goals');
    expect(formatMarkdown(results)).toContain('| N | T min | variant |');
    expect(chartSvg(results.chart.points, results.chart.targets)).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });
});
