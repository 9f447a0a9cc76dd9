/**
 * The end of a run: the manifest as a table or JSON, optionally written to a file, and the exit code
 * (0 only when every target succeeded and the source share was revoked).
 */
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { causeMessage } from '../functions/shared/json';
import type { Manifest } from '../functions/shared/manifest-schema';
import { usageError } from './errors';
import type { Outcome } from './deployed';
import { manifestTable, type Output } from './render';

export interface ReportOptions {
  output: 'table' | 'json';
  /** Where to write the manifest JSON as well. */
  manifestPath?: string;
}

export function exitCodeOf(manifest: Manifest): 0 | 1 {
  return manifest.status === 'SUCCEEDED' && manifest.sourceShare?.revoked === true ? 0 : 1;
}

/** A Lambda error's cause is JSON with errorType and errorMessage; other causes are plain text. */
export function errorMessage(error: { name: string; cause: string }): string {
  return causeMessage(error.cause);
}

/** --manifest FILE is checked before a run starts: a run of an hour should not end in "no such directory". */
export function checkManifestPath(path: string, command: string, canWrite: (path: string) => void = (p) => accessSync(p, constants.W_OK)): void {
  const problem = (why: string) => usageError(`--manifest ${path}: ${why}`, command);
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  const writable = (p: string) => {
    try {
      canWrite(p);
      return true;
    } catch {
      return false;
    }
  };
  if (path === '') throw problem('needs a file name, e.g. manifest.json');
  const file = stat(path);
  if (file?.isDirectory()) throw problem('is a folder; give a file name in it, e.g. manifest.json');
  if (file && !writable(path)) throw problem('the file exists and is not writable');
  const folder = dirname(path);
  const dir = stat(folder);
  if (!dir) throw problem(`the folder ${folder} does not exist; create it first or choose another path`);
  if (!dir.isDirectory()) throw problem(`${folder} is not a folder`);
  if (!file && !writable(folder)) throw problem(`the folder ${folder} is not writable`);
}

/** Writes the manifest; false (and one line on stderr) when that fails, after the result has been printed. */
function writeManifest(path: string, manifest: Manifest, stderr: Output): boolean {
  try {
    writeFileSync(path, `${JSON.stringify(manifest, null, 2)}\n`);
    return true;
  } catch (error) {
    stderr.write(`ami-pipeline: cannot write the manifest to ${path}: ${(error as Error).message}\n`);
    return false;
  }
}

export function report(outcome: Outcome, options: ReportOptions, io: { stdout: Output; stderr: Output }): number {
  const json = options.output === 'json';
  const where = outcome.executionArn ?? outcome.executionName ?? '';
  if (outcome.manifest) {
    io.stdout.write(json ? `${JSON.stringify(outcome.manifest, null, 2)}\n` : manifestTable(outcome.manifest, io.stdout.columns ?? 160));
    if (options.manifestPath) {
      if (!writeManifest(options.manifestPath, outcome.manifest, io.stderr)) return 1;
      if (!json) io.stdout.write(`manifest written to ${options.manifestPath}\n`);
    }
    return exitCodeOf(outcome.manifest);
  }
  if (outcome.skipped) {
    if (json) io.stdout.write(`${JSON.stringify({ status: 'SKIPPED', executionName: outcome.executionName ?? null, reason: outcome.skipped }, null, 2)}\n`);
    else io.stdout.write(`SKIPPED: ${outcome.skipped}; nothing was shared or copied (${where})\n`);
    return 0;
  }
  const error = outcome.error ?? { name: outcome.status, cause: `the execution ended ${outcome.status}` };
  const message = errorMessage(error);
  io.stderr.write(`The run failed without a manifest (${where}): ${error.name}: ${message}\n`);
  if (options.manifestPath) io.stderr.write(`no manifest to write to ${options.manifestPath}\n`);
  if (json) {
    const doc = { status: outcome.status, executionName: outcome.executionName ?? null, executionArn: outcome.executionArn ?? null, error: { name: error.name, message } };
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  }
  return 1;
}
