/** The commands that touch AWS: run (local or deployed) and status. Each resolves to its exit code. */
import type { EventLog } from '../local/asl';
import type { LocalRunResult } from '../local/runner';
import {
  ExecutionWatcher,
  outcomeOfExecution,
  regionOfArn,
  sfnClient,
  sleep,
  startExecution,
  stateMachineArnFromStack,
  type Outcome,
} from './deployed';
import { CliError } from './errors';
import { readInputFile } from './input';
import { ProgressTracker, targetsOfInput, type StateEvent } from './progress';
import { createLiveView, liveLines, type LiveView, type Output } from './render';
import { report, type ReportOptions } from './report';

export interface Io {
  stdout: Output;
  stderr: Output;
}

export interface RunOptions extends ReportOptions {
  input: string;
  /** `rekey` runs the input in key-replacement mode (ami-pipeline rekey). */
  mode?: 'rekey';
  /** Retention only reports what it would retire (--dry-run). */
  dryRun?: boolean;
  local: boolean;
  endpointUrl?: string;
  stateMachineArn?: string;
  stack: string;
  region?: string;
  waitMs?: number;
  pollMs: number;
}

export interface StatusOptions extends ReportOptions {
  executionArn: string;
  follow: boolean;
  region?: string;
  endpointUrl?: string;
  pollMs: number;
}

/** The local runner's events, as the tracker reads them. */
export function fromLocalEvent(event: EventLog): StateEvent | undefined {
  if (!event.state) return undefined;
  const at = event.timestamp !== undefined ? { at: event.timestamp } : {};
  if (event.type === 'StateEntered') return { kind: 'entered', stateName: event.state.name, input: event.state.input, ...at };
  if (event.type === 'StateExited') return { kind: 'exited', stateName: event.state.name, output: event.state.output, ...at };
  return undefined;
}

function feed(tracker: ProgressTracker, view: LiveView, events: StateEvent[]): void {
  view.update(events.flatMap((e) => tracker.apply(e) ?? []));
}

function finish(outcome: Outcome, tracker: ProgressTracker, view: LiveView, options: ReportOptions, io: Io): number {
  if (outcome.manifest) view.update(tracker.applyManifest(outcome.manifest));
  view.stop();
  return report(outcome, options, io);
}

async function runLocally(options: RunOptions, raw: unknown, tracker: ProgressTracker, view: LiveView): Promise<Outcome> {
  const endpointUrl = options.endpointUrl ?? process.env.AWS_ENDPOINT_URL;
  view.note(`running the state machine on this machine against ${endpointUrl}`);
  tracker.stage = 'bundling the functions';
  // Bundles of our own: a demo or test building .local-build/ at the same time cannot swap them mid-run.
  // Loaded here: esbuild and aws-local-stepfunctions take most of a second, which deployed runs need not wait for.
  const [{ buildBundles, temporaryBundleDir }, { runLocal }] = await Promise.all([import('../local/bundle'), import('../local/runner')]);
  // Removed on every way out: here on a normal end or an error, by its own hooks on exit and on signals.
  const outDir = temporaryBundleDir();
  let result: LocalRunResult;
  try {
    result = await runLocal(raw, {
      bundles: await buildBundles(outDir.path),
      ...(endpointUrl ? { endpointUrl } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}),
      onEvent: (event) => {
        const e = fromLocalEvent(event);
        if (e) feed(tracker, view, [e]);
      },
    });
  } finally {
    outDir.remove();
  }
  const skipped = result.events.find((e) => e.type === 'StateEntered' && e.state?.name === 'SourceNotOptedIn');
  const reason = (skipped?.state?.input as { skipReason?: string } | undefined)?.skipReason;
  return {
    status: result.status,
    executionName: result.executionName,
    ...(result.manifest ? { manifest: result.manifest } : {}),
    ...(result.error ? { error: result.error } : {}),
    ...(skipped && !result.manifest ? { skipped: reason ?? 'the source does not carry the opt-in tag' } : {}),
  };
}

/** Ctrl-C stops following, not the execution: say how to pick it up again. */
async function following<T>(view: LiveView, executionArn: string, follow: () => Promise<T>): Promise<T> {
  const stop = () => {
    view.stop();
    process.stderr.write(`\nstopped following; the execution goes on: ami-pipeline status ${executionArn} --follow\n`);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    return await follow();
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

async function runDeployed(options: RunOptions, raw: unknown, tracker: ProgressTracker, view: LiveView): Promise<Outcome> {
  const aws = { ...(options.region ? { region: options.region } : {}), ...(options.endpointUrl ? { endpointUrl: options.endpointUrl } : {}) };
  tracker.stage = 'starting the execution';
  const stateMachineArn = options.stateMachineArn ?? (await stateMachineArnFromStack(options.stack, aws));
  const region = options.region ?? regionOfArn(stateMachineArn);
  const sfn = sfnClient({ ...aws, ...(region ? { region } : {}) });
  try {
    const executionArn = await startExecution(sfn, stateMachineArn, raw);
    view.note(`started ${executionArn}`);
    const watcher = new ExecutionWatcher(sfn, executionArn);
    return outcomeOfExecution(sfn, await following(view, executionArn, () => watcher.follow(options.pollMs, (events) => feed(tracker, view, events))));
  } finally {
    sfn.destroy();
  }
}

export async function run(options: RunOptions, io: Io): Promise<number> {
  const file = readInputFile(options.input, (raw) => ({
    ...raw,
    ...(options.mode ? { mode: options.mode } : {}),
    ...(options.dryRun ? { retention: { ...(raw.retention as Record<string, unknown> | undefined), dryRun: true } } : {}),
  }));
  if (options.local && !options.endpointUrl && !process.env.AWS_ENDPOINT_URL) {
    throw new CliError('--local needs an AWS-compatible endpoint such as moto: pass --endpoint-url http://127.0.0.1:5000 or set AWS_ENDPOINT_URL', 2);
  }
  const live = options.output === 'json' ? io.stderr : io.stdout;
  const tracker = new ProgressTracker(file.targets);
  const view = createLiveView(live, tracker, options.local ? 'ami-pipeline (local run)' : 'ami-pipeline');
  if (file.targets.length === 0) view.note(`targets come from ${file.input.targetsParameter}; they appear as they start`);
  try {
    const outcome = options.local ? await runLocally(options, file.raw, tracker, view) : await runDeployed(options, file.raw, tracker, view);
    return finish(outcome, tracker, view, options, io);
  } catch (error) {
    view.stop();
    throw error;
  }
}

export async function status(options: StatusOptions, io: Io): Promise<number> {
  const region = options.region ?? regionOfArn(options.executionArn);
  const sfn = sfnClient({ ...(region ? { region } : {}), ...(options.endpointUrl ? { endpointUrl: options.endpointUrl } : {}) });
  try {
    const watcher = new ExecutionWatcher(sfn, options.executionArn);
    const first = await watcher.poll();
    const tracker = new ProgressTracker(targetsOfInput(JSON.parse(first.execution.input ?? '{}') as unknown));
    if (first.execution.startDate) tracker.startedAt = first.execution.startDate.getTime();
    for (const event of first.events) tracker.apply(event);
    const title = `ami-pipeline ${first.execution.name ?? options.executionArn}`;
    if (first.execution.status === 'RUNNING' && !options.follow) {
      if (options.output === 'json') {
        const targets = tracker.targets().map((t) => ({ ...t, elapsedMs: tracker.elapsed(t) }));
        io.stdout.write(`${JSON.stringify({ status: 'RUNNING', executionArn: options.executionArn, stage: tracker.stage, targets }, null, 2)}\n`);
      } else {
        io.stdout.write(`${liveLines(tracker, title).join('\n')}\n\nstill running: follow it with ami-pipeline status ${options.executionArn} --follow\n`);
      }
      return 0;
    }
    if (first.execution.status !== 'RUNNING') return report(await outcomeOfExecution(sfn, first.execution), options, io);
    const live = options.output === 'json' ? io.stderr : io.stdout;
    if (!live.isTTY) live.write(`${liveLines(tracker, title).join('\n')}\n`);
    const view = createLiveView(live, tracker, title);
    const execution = await following(view, options.executionArn, async () => {
      await sleep(options.pollMs);
      return watcher.follow(options.pollMs, (events) => feed(tracker, view, events));
    });
    return finish(await outcomeOfExecution(sfn, execution), tracker, view, options, io);
  } finally {
    sfn.destroy();
  }
}
