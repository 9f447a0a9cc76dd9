/**
 * The bundle folder of a local run (ami-pipeline-bundles-PID-*) goes on every way out: a normal end, an error or
 * process.exit, Ctrl-C or kill, and a kill -9 (swept by the next run). Each process gets a TMPDIR of its own.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { temporaryBundleDir } from '../../local/bundle';
import { ROOT, STUB_INPUT, tempDir } from '../support/cli';

const bundleDirs = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('ami-pipeline-bundles-'));

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts node with `args` in its own process group (as a terminal runs a command), TMPDIR set to `tmp`. */
function start(args: string[], tmp: string) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, TMPDIR: tmp, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1', AWS_EC2_METADATA_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const ended = new Promise<Ended>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, ended };
}

async function until(check: () => boolean, ended: Promise<Ended>): Promise<void> {
  let done = false;
  void ended.then(() => (done = true));
  while (!check()) {
    if (done) throw new Error(`the process ended first: ${(await ended).stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the bundle folder of a local run', () => {
  const root = tempDir();
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(['SIGINT', 'SIGTERM'] as const)('goes when the CLI gets %s while the run is under way', { timeout: 120_000 }, async (signal) => {
    const tmp = join(root, signal);
    mkdirSync(tmp);
    const input = join(root, `input-${signal}.json`);
    writeFileSync(input, JSON.stringify(STUB_INPUT));
    // Nothing listens on port 9: the run cannot get far, but the signal comes as soon as the folder exists.
    const { child, ended } = start(['bin/ami-pipeline.mjs', 'run', '--input', input, '--local', '--endpoint-url', 'http://127.0.0.1:9'], tmp);
    await until(() => bundleDirs(tmp).length > 0, ended);
    process.kill(-(child.pid ?? 0), signal);
    // A run that cleans up after the first signal (its own interrupt handling) ends at once on a second.
    const again = setTimeout(() => child.exitCode === null && process.kill(-(child.pid ?? 0), signal), 10_000);
    const result = await ended;
    clearTimeout(again);
    expect(result.signal === signal || result.code === 128 + (signal === 'SIGINT' ? 2 : 15), JSON.stringify(result)).toBe(true);
    expect(bundleDirs(tmp)).toEqual([]);
  });

  it.each([
    ['process.exit', 'process.exit(3);', 3],
    ['an uncaught error', "throw new Error('boom');", 1],
  ])('goes on %s', async (_what, ending, exitCode) => {
    const tmp = join(root, `exit-${exitCode}`);
    mkdirSync(tmp);
    const script = join(root, `exit-${exitCode}.mjs`);
    writeFileSync(script, `import { temporaryBundleDir } from ${JSON.stringify(join(ROOT, 'local/bundle.ts'))};\ntemporaryBundleDir();\n${ending}\n`);
    const { ended } = start(['--import', 'tsx', script], tmp);
    const result = await ended;
    expect(result.code, result.stderr).toBe(exitCode);
    expect(bundleDirs(tmp)).toEqual([]);
  });
});

describe('temporaryBundleDir', () => {
  const saved = process.env.TMPDIR;
  const tmp = tempDir();
  afterEach(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('sweeps the folders of processes that were killed outright, and keeps those of live ones', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('close', r));
    process.env.TMPDIR = tmp;
    const stale = join(tmp, `ami-pipeline-bundles-${dead.pid ?? 0}-abc123`);
    const live = join(tmp, `ami-pipeline-bundles-${process.ppid}-def456`);
    const other = join(tmp, 'ami-pipeline-bundles-xyz789');
    for (const d of [stale, live, other]) mkdirSync(d);
    const listeners = process.listenerCount('SIGINT');

    const dir = temporaryBundleDir();
    expect(existsSync(dir.path)).toBe(true);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(other)).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(listeners + 1);

    dir.remove();
    dir.remove();
    expect(existsSync(dir.path)).toBe(false);
    expect(process.listenerCount('SIGINT')).toBe(listeners);
  });
});
