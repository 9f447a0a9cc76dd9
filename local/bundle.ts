/**
 * Builds the Lambda bundles exactly as `serverless package` does: the esbuild options are read from
 * serverless.yml (custom.esbuild, its `plugins` file included) and each function's entry from its `handler`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { parse } from 'yaml';
import { processAlive } from './process-alive';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface ServerlessConfig {
  functions: Record<string, { handler: string }>;
  custom: { esbuild: Record<string, unknown> & { outputFileExtension?: string; plugins?: string } };
}

export interface Bundle {
  /** serverless.yml function key, e.g. copyEncrypt. */
  name: string;
  /** Absolute path of the built module. */
  file: string;
  /** Exported handler name. */
  exportName: string;
  /** esbuild's account of this bundle (its bytes, and each input's bytes in it), when asked for with `metafile`. */
  output?: Metafile['outputs'][string];
}

const PREFIX = 'ami-pipeline-bundles-';
/** Signals that end a process by default and can be caught: Ctrl-C, kill, a closed terminal. */
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Bundle folders this process made and has not removed yet. */
const owned = new Set<string>();

function removeOwned(): void {
  for (const dir of owned) rmSync(dir, { recursive: true, force: true });
  owned.clear();
}

/**
 * On a signal: when this is the only handler, remove the folders and end the process as the signal would have (the
 * shell sees 130 for Ctrl-C). When another handler listens (a run cleaning up after an interrupt), it decides when the
 * process ends, and the 'exit' hook removes the folders then: its cleanup may still load these bundles.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  removeOwned();
  unhook();
  process.kill(process.pid, signal);
}

function hook(): void {
  process.on('exit', removeOwned);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function unhook(): void {
  process.removeListener('exit', removeOwned);
  for (const signal of SIGNALS) process.removeListener(signal, onSignal);
}

/** Folders left by a process that was killed outright (SIGKILL, a crash of Node itself): their pid is gone. */
function sweepStale(): void {
  const root = tmpdir();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    try {
      rmSync(join(root, name), { recursive: true, force: true });
    } catch {
      // another user's folder, or one going away already
    }
  }
}

export interface TemporaryDir {
  path: string;
  /** Remove the folder now (idempotent). */
  remove(): void;
}

/**
 * A temporary folder for one run's bundles (`ami-pipeline-bundles-PID-*`), removed on every way out: `remove()` on a
 * normal end, the process's 'exit' event (process.exit, an error), and SIGINT, SIGTERM or SIGHUP. Folders of processes
 * that were killed outright are swept when the next one is made.
 */
export function temporaryBundleDir(): TemporaryDir {
  sweepStale();
  const path = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
  if (owned.size === 0) hook();
  owned.add(path);
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true });
      if (owned.delete(path) && owned.size === 0) unhook();
    },
  };
}

export function serverlessConfig(): ServerlessConfig {
  return parse(readFileSync(`${ROOT}serverless.yml`, 'utf8')) as ServerlessConfig;
}

/**
 * Bundle every function of serverless.yml into `outDir` (by default a new temporary folder, removed when the process
 * ends, so runs that build at the same time never overwrite each other's bundles); resolves to where each landed.
 * One esbuild run with an entry point per function: each output is the same file a build of that function alone
 * gives (no code splitting), and the shared SDK code is parsed once instead of once per function.
 */
export async function buildBundles(
  outDir = temporaryBundleDir().path,
  options: { metafile?: boolean } = {},
): Promise<Bundle[]> {
  const config = serverlessConfig();
  const { outputFileExtension = '.js', exclude: _exclude, plugins: pluginsFile, ...esbuildOptions } = config.custom.esbuild;
  // serverless-esbuild require()s the file named by `plugins`, relative to the service directory; so does this.
  const plugins = pluginsFile ? (createRequire(import.meta.url)(`${ROOT}${pluginsFile}`) as Plugin[]) : [];
  mkdirSync(outDir, { recursive: true });
  const functions = Object.entries(config.functions).map(([name, fn]) => {
    const dot = fn.handler.lastIndexOf('.');
    return { name, entry: `${ROOT}${fn.handler.slice(0, dot)}.ts`, exportName: fn.handler.slice(dot + 1) };
  });
  const result = await build({
    ...(esbuildOptions as BuildOptions),
    plugins,
    entryPoints: Object.fromEntries(functions.map((f) => [f.name, f.entry])),
    outdir: outDir,
    outExtension: { '.js': outputFileExtension },
    logLevel: 'error',
    metafile: options.metafile === true,
  });
  // The metafile names outputs relative to the working directory.
  const outputs = new Map(Object.entries(result.metafile?.outputs ?? {}).map(([path, output]) => [resolve(path), output]));
  return functions
    .map(({ name, exportName }) => {
      const file = resolve(outDir, `${name}${outputFileExtension}`);
      const output = outputs.get(file);
      return { name, file, exportName, ...(output ? { output } : {}) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}
