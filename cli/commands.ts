/** The commands that touch AWS: run (local or deployed) and status. Each resolves to its exit code. */
import type { EventLog } from '../local/asl';
import type { LocalRunResult } from '../local/runner';
import type { TargetPair } from '../functions/shared/plan';
import {
  ExecutionWatcher,
  outcomeOfExecution,
  redriveExecution,
  regionOfArn,
  s3ManifestReader,
  storedManifest,
  sfnClient,
  sleep,
  startExecution,
  stateMachineArnFromStack,
  type Outcome,
} from './deployed';
import { cleanUpRun, cliLiveness } from './cleanup';
import { cleanupCommandLine } from './cleanup-command';
import { CliError } from './errors';
import { catchInterrupts, interruptedManifest, planOf, type Interrupt } from './interrupt';
import { readInputFile } from './input';
import { ProgressTracker, targetsOfInput, type StateEvent } from './progress';
import { createLiveView, leftText, liveLines, type LiveView, type Output } from './render';
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

async function runLocally(options: RunOptions, raw: unknown, tracker: ProgressTracker, view: LiveView, io: Io): Promise<Outcome> {
  const endpointUrl = options.endpointUrl ?? process.env.AWS_ENDPOINT_URL;
  view.note(`running the state machine on this machine against ${endpointUrl}`);
  tracker.stage = 'bundling the functions';
  // Bundles of our own: a demo or test building .local-build/ at the same time cannot swap them mid-run.
  // Loaded here: esbuild and aws-local-stepfunctions take most of a second, which deployed runs need not wait for.
  const [{ buildBundles, temporaryBundleDir }, { runLocal }] = await Promise.all([import('../local/bundle'), import('../local/runner')]);
  const command = cleanupCommandLine({ input: options.input, ...(endpointUrl ? { endpointUrl } : {}) });
  const interrupt = catchInterrupts(io.stderr, command);
  // Removed on every way out: here on a normal end or an error, by its own hooks on exit and on signals.
  const outDir = temporaryBundleDir();
  let result: LocalRunResult;
  try {
    const bundles = await buildBundles(outDir.path).catch(async (error: unknown) => {
      // The signal also reaches esbuild's service (it runs in the CLI's process group), and bundling then fails
      // ("The service was stopped", at times "…: write EPIPE"): that is the interrupt, not an error of its own. The
      // service can die before this process has run its own signal handler: give the handler a moment first.
      if (!interrupt.signal.aborted && /The service (was stopped|is no longer running)/.test(error instanceof Error ? error.message : String(error))) {
        await aborted(interrupt.signal, 2_000);
      }
      if (!interrupt.signal.aborted) throw error;
      return undefined;
    });
    if (bundles === undefined) {
      view.stop();
      io.stderr.write('interrupted while bundling the functions, before the run started: nothing was shared or copied\n');
      return { status: 'ABORTED', executionName: '', error: { name: 'ExecutionAborted', cause: 'interrupted before the run started' }, interrupted: interrupt.exitCode() };
    }
    result = await runLocal(raw, {
      bundles,
      ...(endpointUrl ? { endpointUrl } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}),
      signal: interrupt.signal,
      onEvent: (event) => {
        const e = fromLocalEvent(event);
        if (e) feed(tracker, view, [e]);
      },
    });
    if (result.status === 'ABORTED') return await afterInterrupt(result, { endpointUrl, region: options.region, command, interrupt, view, io });
  } finally {
    interrupt.dispose();
    outDir.remove();
  }
  const skipped = result.events.find((e) => e.type === 'StateEntered' && e.state?.name === 'SourceNotOptedIn');
  const reason = (skipped?.state?.input as { skipReason?: string } | undefined)?.skipReason;
  return {
    status: result.status,
    executionName: result.executionName,
    ...(result.manifest ? { manifest: storedManifest(result.manifest, `the manifest of the local run ${result.executionName}`) } : {}),
    ...(result.error ? { error: result.error } : {}),
    ...(skipped && !result.manifest ? { skipped: reason ?? 'the source does not carry the opt-in tag' } : {}),
  };
}

/** A local run stopped by a signal: remove what it left, say what was done and what is left, keep the manifest. */
async function afterInterrupt(
  result: LocalRunResult,
  ctx: { endpointUrl: string | undefined; region: string | undefined; command: string; interrupt: Interrupt; view: LiveView; io: Io },
): Promise<Outcome> {
  ctx.view.stop();
  const plan = planOf(result.events);
  const { stderr } = ctx.io;
  if (!plan) {
    stderr.write('interrupted before the source was resolved: nothing was shared or copied\n');
    return { status: 'ABORTED', executionName: result.executionName, error: { name: 'ExecutionAborted', cause: 'interrupted before the source was resolved' }, interrupted: ctx.interrupt.exitCode() };
  }
  ctx.interrupt.setLeftover(
    () => `left: possibly the launch checks of ${plan.targetCount} target(s)${plan.source ? ` and the share of ${plan.source.imageId}` : ''}; remove them with ${ctx.command}\n`,
  );
  const { createClientFactory } = await import('../functions/shared/clients');
  const { commandRegion, inFunctionsEnvironment } = await import('./functions-env');
  const { readTargets, s3RunStore } = await import('../functions/shared/run-store');
  // The cleanup runs the functions' own code in this process.
  const { cleaned, targets } = await inFunctionsEnvironment(ctx.endpointUrl, async () => {
    const region = commandRegion(ctx.region, plan.source?.region ?? undefined);
    const clients = createClientFactory(region);
    // The run's targets: the file ResolveSource wrote for the Distributed Map, in the runs bucket.
    const targets: TargetPair[] = await readTargets(plan.files, s3RunStore(() => clients.builder().s3(region))).catch((error: unknown) => {
      stderr.write(`could not read the run's targets (${(error as Error).message}): only the source share is cleaned up; run ${ctx.command} for the rest\n`);
      return [];
    });
    return { targets, cleaned: await cleanUpRun(result.executionName, plan, targets, { clients, liveness: cliLiveness(ctx.endpointUrl) }) };
  });
  const removed = cleaned.targets.filter((t) => t.launchCheck && (t.launchCheck.autoScalingGroupDeleted || t.launchCheck.launchTemplateDeleted || t.launchCheck.terminatedInstanceIds.length > 0));
  const failed = cleaned.targets.filter((t) => t.error);
  stderr.write(`interrupted: removed the launch checks of ${removed.length} target(s)` +
    `${cleaned.targets.some((t) => t.deregistered.length > 0) ? `, deregistered ${cleaned.targets.flatMap((t) => t.deregistered).join(', ')}` : ''}\n`);
  const share = cleaned.share;
  if (share && 'error' in share) stderr.write(`the source share was NOT revoked (${share.error.name}: ${share.error.message})\n`);
  else if (share) stderr.write(`source share: revoked from ${share.accountIds.length} account(s)${leftText(share.left)}\n`);
  for (const t of failed) stderr.write(`left in ${t.accountId}/${t.region}: ${t.error?.name ?? ''}: ${t.error?.message ?? ''}\n`);
  if (failed.length > 0 || (share && !share.revoked)) stderr.write(`remove what is left with ${ctx.command}\n`);
  else stderr.write('nothing of this run is left running or shared\n');
  return {
    status: 'ABORTED',
    executionName: result.executionName,
    manifest: interruptedManifest(result.executionName, plan, targets, result.events, share, cleaned.targets),
    interrupted: ctx.interrupt.exitCode(),
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
  process.once('SIGTERM', stop);
  try {
    return await follow();
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
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
    const execution = await following(view, executionArn, () => watcher.follow(options.pollMs, (events) => feed(tracker, view, events)));
    return outcomeOfExecution(execution, s3ManifestReader({ ...aws, ...(region ? { region } : {}) }));
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
    const outcome = options.local ? await runLocally(options, file.raw, tracker, view, io) : await runDeployed(options, file.raw, tracker, view);
    const code = finish(outcome, tracker, view, options, io);
    return outcome.interrupted ?? code;
  } catch (error) {
    view.stop();
    throw error;
  }
}

export async function status(options: StatusOptions, io: Io): Promise<number> {
  return watch(options, io, false);
}

/** ami-pipeline redrive: RedriveExecution, then follow it as `run` does. */
export async function redrive(options: StatusOptions, io: Io): Promise<number> {
  return watch({ ...options, follow: true }, io, true);
}

async function watch(options: StatusOptions, io: Io, redriveFirst: boolean): Promise<number> {
  const region = options.region ?? regionOfArn(options.executionArn);
  const aws = { ...(region ? { region } : {}), ...(options.endpointUrl ? { endpointUrl: options.endpointUrl } : {}) };
  const sfn = sfnClient(aws);
  const readManifest = s3ManifestReader(aws);
  try {
    if (redriveFirst) {
      await redriveExecution(sfn, options.executionArn);
      (options.output === 'json' ? io.stderr : io.stdout).write(`redriven ${options.executionArn}: what did not succeed runs again\n`);
    }
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
    if (first.execution.status !== 'RUNNING') return report(await outcomeOfExecution(first.execution, readManifest), options, io);
    const live = options.output === 'json' ? io.stderr : io.stdout;
    if (!live.isTTY) live.write(`${liveLines(tracker, title).join('\n')}\n`);
    const view = createLiveView(live, tracker, title);
    const execution = await following(view, options.executionArn, async () => {
      await sleep(options.pollMs);
      return watcher.follow(options.pollMs, (events) => feed(tracker, view, events));
    });
    return finish(await outcomeOfExecution(execution, readManifest), tracker, view, options, io);
  } finally {
    sfn.destroy();
  }
}

/** Resolves when `signal` aborts, or after `ms` if it does not. */
function aborted(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
