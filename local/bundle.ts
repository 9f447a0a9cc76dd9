/**
 * Builds the Lambda bundles exactly as `serverless package` does: the esbuild options are read from
 * serverless.yml (custom.esbuild) and each function's entry from its `handler`.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface ServerlessConfig {
  functions: Record<string, { handler: string }>;
  custom: { esbuild: Record<string, unknown> & { outputFileExtension?: string } };
}

export interface Bundle {
  /** serverless.yml function key, e.g. copyEncrypt. */
  name: string;
  /** Absolute path of the built module. */
  file: string;
  /** Exported handler name. */
  exportName: string;
}

export function serverlessConfig(): ServerlessConfig {
  return parse(readFileSync(`${ROOT}serverless.yml`, 'utf8')) as ServerlessConfig;
}

/**
 * Bundle every function of serverless.yml into `outDir` (by default a new temporary folder, so runs that build at
 * the same time never overwrite each other's bundles); resolves to where each landed.
 */
export async function buildBundles(outDir = mkdtempSync(join(tmpdir(), 'ami-pipeline-bundles-'))): Promise<Bundle[]> {
  const config = serverlessConfig();
  const { outputFileExtension = '.js', exclude: _exclude, ...esbuildOptions } = config.custom.esbuild;
  mkdirSync(outDir, { recursive: true });
  const bundles: Bundle[] = [];
  await Promise.all(
    Object.entries(config.functions).map(async ([name, fn]) => {
      const dot = fn.handler.lastIndexOf('.');
      const entry = `${ROOT}${fn.handler.slice(0, dot)}.ts`;
      const file = `${outDir}/${name}${outputFileExtension}`;
      await build({ ...(esbuildOptions as BuildOptions), entryPoints: [entry], outfile: file, logLevel: 'error' });
      bundles.push({ name, file, exportName: fn.handler.slice(dot + 1) });
    }),
  );
  return bundles.sort((a, b) => a.name.localeCompare(b.name));
}
