/**
 * Builds the Lambda bundles exactly as `serverless package` does: the esbuild options are read from
 * serverless.yml (custom.esbuild, its `plugins` file included) and each function's entry from its `handler`.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { parse } from 'yaml';

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

export function serverlessConfig(): ServerlessConfig {
  return parse(readFileSync(`${ROOT}serverless.yml`, 'utf8')) as ServerlessConfig;
}

/**
 * Bundle every function of serverless.yml into `outDir` (by default a new temporary folder, so runs that build at
 * the same time never overwrite each other's bundles); resolves to where each landed.
 * One esbuild run with an entry point per function: each output is the same file a build of that function alone
 * gives (no code splitting), and the shared SDK code is parsed once instead of once per function.
 */
export async function buildBundles(
  outDir = mkdtempSync(join(tmpdir(), 'ami-pipeline-bundles-')),
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
