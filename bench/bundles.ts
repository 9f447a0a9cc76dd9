/**
 * Each function's bundle as it deploys: built with serverless.yml's esbuild settings (local/bundle.ts), its size
 * minified and zipped, and the time a fresh Node process takes to import it.
 * - zipBytes is the size of the zip serverless-esbuild writes (one entry, `functions/<file>.mjs`, deflated at zlib
 *   level 1 by archiver, with a data descriptor), computed rather than written: it matches .serverless/*.zip exactly.
 * - importMs is `performance.now()` in the child once `import()` resolves, i.e. from the process's start: Node's own
 *   start-up (tens of ms) included, as in a Lambda cold start. The median of `runs` processes, run one after another.
 * `npx tsx bench/bundles.ts` prints the table.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { buildBundles, serverlessConfig } from '../local/bundle';

export interface BundleMeasure {
  /** serverless.yml function key. */
  name: string;
  /** Minified bundle. */
  bytes: number;
  /** The function's deployment zip. */
  zipBytes: number;
  /** Median time to import the bundle in a fresh Node process, from the process's start. */
  importMs: number;
}

// Local file header (30) + data descriptor (16) + central directory entry (46) + end of central directory (22),
// plus the entry name twice.
const ZIP_OVERHEAD = 30 + 16 + 46 + 22;

/** Size of the single-entry zip serverless-esbuild writes for `content` stored as `entryName`. */
export function zipSize(content: Buffer, entryName: string): number {
  return deflateRawSync(content, { level: 1 }).length + ZIP_OVERHEAD + 2 * Buffer.byteLength(entryName);
}

/** Milliseconds from a fresh Node process's start until `file` is imported. */
export function importTime(file: string): number {
  const script = `import(${JSON.stringify(pathToFileURL(file).href)}).then(() => process.stdout.write(String(performance.now())))`;
  const child = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  const ms = Number(child.stdout);
  if (child.status !== 0 || !Number.isFinite(ms)) throw new Error(`Importing ${file} failed: ${child.stderr || child.stdout}`);
  return ms;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

export async function measureBundles(runs = 3): Promise<BundleMeasure[]> {
  const config = serverlessConfig();
  const bundles = await buildBundles();
  try {
    return bundles.map(({ name, file }) => {
      const content = readFileSync(file);
      const handler = config.functions[name]?.handler ?? name;
      const entryName = `${dirname(handler)}/${basename(file)}`;
      const times = Array.from({ length: runs }, () => importTime(file));
      return { name, bytes: content.length, zipBytes: zipSize(content, entryName), importMs: Math.round(median(times) * 10) / 10 };
    });
  } finally {
    const dir = bundles[0] ? dirname(bundles[0].file) : undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

export function formatTable(rows: BundleMeasure[]): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [['function', 'minified', 'zipped', 'import'], ...rows.map((r) => [r.name, kb(r.bytes), kb(r.zipBytes), `${r.importMs.toFixed(1)} ms`])];
  const widths = lines[0]?.map((_, i) => Math.max(...lines.map((l) => l[i]?.length ?? 0))) ?? [];
  return lines.map((l) => l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${formatTable(await measureBundles())}\n`);
}
