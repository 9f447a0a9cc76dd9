/**
 * What `npm run bench` prints and writes: the scenario table, ours against the baseline, the AWS calls by
 * operation, the bundles, and the goals the team checks, each with its measured value. Text for the terminal,
 * Markdown for bench/results.md; both from the same rows.
 */
import type { ScenarioResult } from './scenario';

export interface BundleRow {
  name: string;
  bytes: number;
  zipBytes: number;
  importMs: number;
}

export interface Comparison {
  targets: number;
  copyMinutes: number;
  transitionsRatio: number;
  apiCallsRatio: number;
  lambdaRatio: number;
  /** Cost per target in USD, ours and the baseline's, and their ratio. */
  costPerTarget: number;
  baselineCostPerTarget: number;
  costRatio: number;
}

export interface Goal {
  goal: string;
  /** The measured value, and where it was measured. */
  measured: string;
  /** null: the scenarios it needs were not run. */
  met: boolean | null;
}

export interface BenchResults {
  mode: 'full' | 'quick';
  generatedAt: string;
  environment: { node: string; cpus: number; processes: number };
  assumptions: Record<string, string | number>;
  notes: string[];
  grid: { targets: number[]; copyMinutes: number[] };
  scenarios: ScenarioResult[];
  comparisons: Comparison[];
  chart: { targets: number; points: { copyMinutes: number; ours: number | null; baseline: number | null }[] };
  bundles: BundleRow[] | { error: string };
  goals: Goal[];
  /** The detection and makespan goals on the chart's other copy times (N=10), outside the grid. */
  chartGoals: Goal[];
  wallMs: number;
}

const n = (v: number, digits = 1) => v.toFixed(digits);
const s = (v: number | null) => (v === null ? '-' : v.toFixed(1));
const int = (v: number) => v.toLocaleString('en-US');

export function find(results: readonly ScenarioResult[], variant: string, targets: number, copyMinutes: number): ScenarioResult | undefined {
  return results.find((r) => r.variant === variant && r.targets === targets && r.copyMinutes === copyMinutes);
}

export function comparisons(results: readonly ScenarioResult[]): Comparison[] {
  return results.flatMap((ours) => {
    if (ours.variant !== 'ours') return [];
    const base = find(results, 'baseline', ours.targets, ours.copyMinutes);
    if (!base) return [];
    return [{
      targets: ours.targets,
      copyMinutes: ours.copyMinutes,
      transitionsRatio: ours.transitions / base.transitions,
      apiCallsRatio: ours.apiCalls / base.apiCalls,
      lambdaRatio: ours.lambdaInvocations / base.lambdaInvocations,
      costPerTarget: ours.costPerTarget,
      baselineCostPerTarget: base.costPerTarget,
      costRatio: ours.costPerTarget / base.costPerTarget,
    }];
  });
}

const at = (r: { targets: number; copyMinutes: number }) => `N=${r.targets} T=${r.copyMinutes}`;

/** A goal met when `value` stays within `limit` in every row: the worst row, with every row's value after it. */
function check<T extends { targets: number; copyMinutes: number }>(
  goal: string, rows: readonly T[], value: (r: T) => number, limit: number, show: (v: number) => string, detail?: (r: T) => string,
): Goal {
  const worst = rows.reduce<T | undefined>((w, r) => (w === undefined || value(r) > value(w) ? r : w), undefined);
  if (!worst) return { goal, measured: 'not run', met: null };
  const all = rows.length > 1 ? `; ${rows.map((r) => `${at(r)}: ${show(value(r))}`).join(', ')}` : '';
  return { goal, measured: `worst ${show(value(worst))} at ${at(worst)}${detail ? ` (${detail(worst)})` : ''}${all}`, met: value(worst) <= limit };
}

/** Each goal over the given scenarios (ours), against its worst one. */
export function goals(results: readonly ScenarioResult[], ratios: readonly Comparison[]): Goal[] {
  const ours = results.filter((r) => r.variant === 'ours');
  return [
    check("At N=1,000, T=60, cost per target at most 1/10 of the baseline's", ratios.filter((r) => r.targets === 1000 && r.copyMinutes === 60), (r) => r.costRatio, 0.1, (v) => v.toFixed(3),
      (r) => `$${r.costPerTarget.toFixed(5)} against $${r.baselineCostPerTarget.toFixed(5)} per target`),
    check('At T=60 and N >= 10, at most 25 state transitions per target', ours.filter((r) => r.copyMinutes === 60 && r.targets >= 10), (r) => r.transitionsPerTarget, 25, (v) => v.toFixed(2)),
    check('Detection delay at most 60 s at the maximum, in every scenario', ours.filter((r) => r.detection.maxSeconds !== null), (r) => r.detection.maxSeconds ?? 0, 60, (v) => `${v.toFixed(1)} s`,
      (r) => `median ${s(r.detection.medianSeconds)} s, worst target ${r.detection.worst ?? '-'}`),
    check('No execution above 5,000 history events', ours, (r) => r.maxHistoryEvents, 5000, int, (r) => r.maxHistoryExecution),
    check('Makespan within 5% of ideal (slowest copy + launch check)', ours, (r) => r.makespanRatio, 1.05, (v) => v.toFixed(3),
      (r) => `${r.makespanSeconds.toFixed(0)} s against ${r.idealSeconds.toFixed(0)} s`),
  ];
}

type Table = { head: string[]; rows: string[][] };

function scenarioTable(results: readonly ScenarioResult[]): Table {
  return {
    head: ['N', 'T min', 'variant', 'targets ok', 'USD/target', 'transitions/target', 'Lambda/target', 'Lambda GB-s/target', 'S3 req/target', 'AWS calls/target', 'throttled', 'max history events', 'detect median s', 'detect max s', 'makespan s', 'ideal s', 'makespan/ideal', 'wall s'],
    rows: results.map((r) => [
      int(r.targets), String(r.copyMinutes), r.variant, `${r.succeeded}/${r.targets}`, `$${r.costPerTarget.toFixed(5)}`, n(r.transitionsPerTarget, 2), n(r.lambdaPerTarget, 2),
      n(r.cost.lambdaGbSeconds / r.targets, 2), n(Object.values(r.s3Requests).reduce((a, b) => a + b, 0) / r.targets, 2),
      n(r.apiCallsPerTarget, 2), String(r.throttledCalls), int(r.maxHistoryEvents), s(r.detection.medianSeconds), s(r.detection.maxSeconds),
      n(r.makespanSeconds, 0), n(r.idealSeconds, 0), r.makespanRatio.toFixed(3), (r.wallMs / 1000).toFixed(1),
    ]),
  };
}

function costTable(results: readonly ScenarioResult[]): Table {
  const usd = (v: number) => `$${v.toFixed(6)}`;
  return {
    head: ['N', 'T min', 'variant', 'Step Functions', 'Lambda requests', 'Lambda duration', 'S3 requests', 'total'],
    rows: results.map((r) => [
      int(r.targets), String(r.copyMinutes), r.variant, usd(r.cost.stepFunctions / r.targets), usd(r.cost.lambdaRequests / r.targets),
      usd(r.cost.lambdaDuration / r.targets), usd(r.cost.s3 / r.targets), usd(r.costPerTarget),
    ]),
  };
}

function ratioTable(rows: readonly Comparison[]): Table {
  return {
    head: ['N', 'T min', 'USD/target ours', 'USD/target baseline', 'cost ours/baseline', 'transitions ours/baseline', 'AWS calls ours/baseline', 'Lambda ours/baseline'],
    rows: rows.map((c) => [
      int(c.targets), String(c.copyMinutes), `$${c.costPerTarget.toFixed(5)}`, `$${c.baselineCostPerTarget.toFixed(5)}`, c.costRatio.toFixed(3),
      c.transitionsRatio.toFixed(3), c.apiCallsRatio.toFixed(3), c.lambdaRatio.toFixed(3),
    ]),
  };
}

function operationTable(results: readonly ScenarioResult[], variant: string): Table {
  const rows = results.filter((r) => r.variant === variant);
  const ops = [...new Set(rows.flatMap((r) => Object.keys(r.apiCallsByOperation)))].sort();
  return {
    head: [`${variant}: calls/target`, ...rows.map((r) => `N=${r.targets} T=${r.copyMinutes}`)],
    rows: ops.map((op) => [op, ...rows.map((r) => n(r.apiCallsByOperation[op] ?? 0, 2))]),
  };
}

function bundleTable(bundles: BenchResults['bundles']): Table | string {
  if (!Array.isArray(bundles)) return `Bundles not measured: ${bundles.error}`;
  return {
    head: ['function', 'minified bytes', 'zipped bytes', 'import ms (fresh node)'],
    rows: bundles.map((b) => [b.name, int(b.bytes), int(b.zipBytes), b.importMs.toFixed(1)]),
  };
}

function goalTable(rows: readonly Goal[]): Table {
  return { head: ['goal', 'measured', 'result'], rows: rows.map((g) => [g.goal, g.measured, g.met === null ? 'not measured' : g.met ? 'met' : 'NOT MET']) };
}

function text(t: Table | string): string {
  if (typeof t === 'string') return t;
  const widths = t.head.map((_, i) => Math.max(...[t.head, ...t.rows].map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

function markdown(t: Table | string): string {
  if (typeof t === 'string') return t;
  const row = (r: string[]) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [row(t.head), row(t.head.map((_, i) => (i < 3 ? '---' : '---:'))), ...t.rows.map(row)].join('\n');
}

function sections(r: BenchResults): [string, Table | string][] {
  const grid = r.scenarios.filter((x) => r.grid.targets.includes(x.targets) && r.grid.copyMinutes.includes(x.copyMinutes));
  const over = r.scenarios.filter((x) => x.maxHistoryEvents > 25_000).map((x) => `${x.variant} N=${x.targets} T=${x.copyMinutes}: ${int(x.maxHistoryEvents)} events in ${x.maxHistoryExecution}`);
  const failed = r.scenarios.filter((x) => x.failed > 0).map((x) => `${x.variant} N=${x.targets} T=${x.copyMinutes}: ${Object.entries(x.failures).map(([e, c]) => `${c} x ${e}`).join(', ')}`);
  return [
    ['Scenarios (per target = over all executions of the run / N)', scenarioTable(r.scenarios)],
    ['Ours / baseline', ratioTable(r.comparisons)],
    ['Cost per target in USD, by service (bench/prices.json)', costTable(r.scenarios)],
    ['Failed targets', failed.length ? failed.join('\n') : 'none'],
    ['Executions above Step Functions\' 25,000-event history limit (AWS would fail them)', over.length ? over.join('\n') : 'none'],
    ['AWS API calls per target by operation (ours)', operationTable(grid, 'ours')],
    ['AWS API calls per target by operation (baseline)', operationTable(grid, 'baseline')],
    ['Bundles', bundleTable(r.bundles)],
    [`Goals (N = ${r.grid.targets.map(int).join(', ')}; T = ${r.grid.copyMinutes.join(', ')})`, goalTable(r.goals)],
    ...(r.chartGoals.length ? [['Goals on the chart\'s other copy times (N=10)', goalTable(r.chartGoals)] as [string, Table]] : []),
  ];
}

export function formatText(r: BenchResults): string {
  const out = sections(r).map(([title, t]) => `== ${title}\n${text(t)}`);
  out.push(`Bench wall time: ${(r.wallMs / 1000).toFixed(1)} s (${r.environment.processes} process${r.environment.processes === 1 ? '' : 'es'} on ${r.environment.cpus} CPUs); chart: bench/chart.svg`);
  return out.join('\n\n');
}

export function formatMarkdown(r: BenchResults): string {
  const assumptions = Object.entries(r.assumptions).map(([k, v]) => `- ${k}: ${v}`);
  return [
    '# Benchmark results',
    '',
    `Generated by \`npm run bench\` (${r.mode}) on ${r.generatedAt}, Node ${r.environment.node}, ${r.environment.cpus} CPUs; ` +
      `bench wall time ${(r.wallMs / 1000).toFixed(1)} s.`,
    '',
    '## Assumptions',
    '',
    ...assumptions,
    ...r.notes.map((x) => `- ${x}`),
    '',
    ...sections(r).flatMap(([title, t]) => [`## ${title}`, '', markdown(t), '']),
    '![Transitions per target against copy time](chart.svg)',
    '',
  ].join('\n');
}
