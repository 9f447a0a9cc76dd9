/**
 * The benchmark: every scenario of the grid (N targets x T minutes, ours and the baseline), a few more copy times
 * at N=10 for the chart, and the function bundles. FakeAws mocks the SDK clients process-wide, so one process runs
 * one scenario at a time: with `workers`, child processes (bench/worker.ts) run them side by side.
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BACKEND } from './backend';
import { BASELINE_POLL_SECONDS, VARIANTS } from './variants';
import { comparisons, find, goals, type BenchResults, type BundleRow } from './report';
import { LAMBDA_MS, runScenario, type Scenario, type ScenarioResult } from './scenario';
import { PRICES } from './cost';

export const FULL_GRID = { targets: [1, 10, 100, 1000], copyMinutes: [10, 60] };
export const QUICK_GRID = { targets: [1, 10], copyMinutes: [10] };
export const CHART = { targets: 10, copyMinutes: [5, 10, 20, 30, 60, 120] };

export interface BenchOptions {
  quick?: boolean;
  /**
   * Child processes running the scenarios, largest first, each taking the next when done (default: none, every
   * scenario in this process, one after another).
   */
  workers?: number;
  /** Measure the bundles (bench/bundles.ts). Default true. */
  bundles?: boolean;
  log?: (line: string) => void;
}

export function plannedScenarios(quick: boolean): { grid: typeof FULL_GRID; scenarios: Scenario[] } {
  const grid = quick ? QUICK_GRID : FULL_GRID;
  const scenarios: Scenario[] = [];
  const add = (targets: number, copyMinutes: number) => {
    for (const variant of VARIANTS) {
      if (!scenarios.some((s) => s.variant === variant && s.targets === targets && s.copyMinutes === copyMinutes)) scenarios.push({ variant, targets, copyMinutes });
    }
  };
  for (const targets of grid.targets) for (const copyMinutes of grid.copyMinutes) add(targets, copyMinutes);
  if (!quick) for (const copyMinutes of CHART.copyMinutes) add(CHART.targets, copyMinutes);
  return { grid, scenarios };
}

/**
 * Rough cost of a scenario, for scheduling: per target a fixed part (a Map iteration, a Parallel branch, a dozen
 * Lambda invocations) and a part per transition (the baseline polls every 15 s, ours a few times).
 */
const cost = (s: Scenario) => s.targets * (100 + (s.variant === 'baseline' ? (s.copyMinutes * 60 * 3) / BASELINE_POLL_SECONDS : 25));

/** Scenarios largest first over `workers` child processes (bench/worker.ts), each given the next when it is done. */
async function inChildren(scenarios: Scenario[], workers: number, onResult: (r: ScenarioResult) => void): Promise<void> {
  const queue = [...scenarios].sort((a, b) => cost(b) - cost(a));
  const worker = () =>
    new Promise<void>((resolve, reject) => {
      const child = fork(fileURLToPath(new URL('./worker.ts', import.meta.url)), [], {
        // The baseline at N=1,000 keeps some millions of events in memory; a larger young generation halves the
        // time its thousand targets in flight spend in scavenges.
        execArgv: ['--import', 'tsx', '--max-old-space-size=12288', '--max-semi-space-size=256'],
      });
      let running: Scenario | undefined;
      const next = () => {
        running = queue.shift();
        child.send(running ? { run: running } : { done: true });
      };
      child.on('message', (m: { result?: ScenarioResult; error?: string }) => {
        if (m.error !== undefined) {
          child.kill();
          reject(new Error(`bench worker failed on ${JSON.stringify(running)}: ${m.error}`));
          return;
        }
        if (m.result) onResult(m.result);
        next();
      });
      child.on('error', reject);
      child.on('exit', (code) => (running === undefined ? resolve() : reject(new Error(`bench worker exited with ${code} while running ${JSON.stringify(running)}`))));
      next();
    });
  await Promise.all(Array.from({ length: Math.min(workers, scenarios.length) }, worker));
}

async function bundles(log: (line: string) => void): Promise<BundleRow[] | { error: string }> {
  try {
    const mod = (await import('./bundles')) as { measureBundles?: () => Promise<BundleRow[]> };
    if (!mod.measureBundles) return { error: 'bench/bundles.ts exports no measureBundles' };
    log('measuring bundles ...');
    return await mod.measureBundles();
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

const describe = (r: ScenarioResult) =>
  `${r.variant.padEnd(8)} N=${String(r.targets).padEnd(4)} T=${String(r.copyMinutes).padEnd(3)} ${r.transitionsPerTarget.toFixed(1)} transitions/target, ` +
  `${r.succeeded}/${r.targets} ok, ${(r.wallMs / 1000).toFixed(1)} s`;

export async function runBench(options: BenchOptions = {}): Promise<BenchResults> {
  const started = performance.now();
  const quick = options.quick ?? false;
  const log = options.log ?? (() => undefined);
  const { grid, scenarios } = plannedScenarios(quick);
  // Bundles first: their import times are measured before the scenarios load the CPUs.
  const bundleRows = options.bundles === false ? { error: 'not measured (bundles: false)' } : await bundles(log);

  const workers = options.workers ?? 0;
  const results: ScenarioResult[] = [];
  const done = (r: ScenarioResult) => {
    results.push(r);
    log(describe(r));
  };
  if (workers > 0) await inChildren(scenarios, workers, done);
  else for (const s of scenarios) done(await runScenario(s));

  const order = (r: ScenarioResult) => scenarios.findIndex((s) => s.variant === r.variant && s.targets === r.targets && s.copyMinutes === r.copyMinutes);
  results.sort((a, b) => order(a) - order(b));
  const inGrid = results.filter((r) => grid.targets.includes(r.targets) && grid.copyMinutes.includes(r.copyMinutes));
  const ratios = comparisons(inGrid);
  const outside = results.filter((r) => !inGrid.includes(r));
  return {
    mode: quick ? 'quick' : 'full',
    generatedAt: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), processes: Math.max(1, Math.min(workers, scenarios.length)) },
    assumptions: {
      'copy time': 'T simulated minutes x a fixed per-target factor in [0.9, 1.1]; snapshot Progress in whole percent',
      'launch check': `${DEFAULT_BACKEND.launchSeconds} s from launch to a running, InService instance`,
      throttling: `${DEFAULT_BACKEND.throttleRate * 100}% of EC2 calls answer RequestLimitExceeded (a fixed hash per account, region and call), retried by the state machine (AWS_MAX_ATTEMPTS=1)`,
      'Lambda latency': `${LAMBDA_MS} ms per invocation + ${DEFAULT_BACKEND.callMs} ms per AWS call, on the target's clock`,
      'retry delays': "each state's Retry (interval, backoff, MaxDelaySeconds), full jitter drawn from a hash",
      baseline: `WaitForImage and WaitForLaunch a fixed ${BASELINE_POLL_SECONDS} s, one look per status task (approachSeconds 0), attempt ceilings raised`,
      input: "accounts 100000000001.. with 10 regions each, verify.mode auto-scaling, copy.timeoutMinutes 180",
    },
    notes: [
      'Targets are taken to start together: the Distributed Map runs one child execution per target, all at once (maxConcurrency 0).',
      'Makespan: the run clock at the end (the latest target once the Map Run is done, plus the run\'s own later states); ideal: the slowest copy + the launch check.',
      `Cost: ${PRICES.region} prices of ${PRICES.date} (bench/prices.json): Standard state transitions, Lambda requests and GB-seconds (arm64, each function's memorySize from serverless.yml x its measured busy time), S3 requests; free tiers left out.`,
      'Detection delay: from the moment a copy is available to the first DescribeImages that reports it available.',
      'State transitions: states entered plus retries, over every execution of the run (the parent and its child executions).',
      'History events: counted per execution as AWS writes them (local/history.ts).',
      "Goals are checked on the grid (worst scenario); the chart's other copy times at N=10 are checked separately.",
      'Per-scenario wall times are measured with the scenarios spread over the child processes, which share the CPUs.',
    ],
    grid,
    scenarios: results,
    comparisons: ratios,
    chart: {
      targets: CHART.targets,
      points: CHART.copyMinutes.map((copyMinutes) => ({
        copyMinutes,
        ours: find(results, 'ours', CHART.targets, copyMinutes)?.transitionsPerTarget ?? null,
        baseline: find(results, 'baseline', CHART.targets, copyMinutes)?.transitionsPerTarget ?? null,
      })),
    },
    bundles: bundleRows,
    goals: goals(inGrid, ratios),
    chartGoals: goals(outside, comparisons(outside)).filter((g) => g.met !== null),
    wallMs: Math.round(performance.now() - started),
  };
}
