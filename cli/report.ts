/**
 * The end of a run: the manifest as a table or JSON, optionally written to a file, and the exit code
 * (0 only when every target succeeded and the source share was revoked).
 */
import { writeFileSync } from 'node:fs';
import type { Manifest } from '../local/manifest';
import { CliError } from './errors';
import type { Outcome } from './deployed';
import { manifestTable, type Output } from './render';

export interface ReportOptions {
  output: 'table' | 'json';
  /** Where to write the manifest JSON as well. */
  manifestPath?: string;
}

export function exitCodeOf(manifest: Manifest): 0 | 1 {
  return manifest.status === 'SUCCEEDED' && manifest.sourceShare.revoked === true ? 0 : 1;
}

/** A Lambda error's cause is JSON with errorType and errorMessage; other causes are plain text. */
export function errorMessage(error: { name: string; cause: string }): string {
  try {
    const parsed = JSON.parse(error.cause) as { errorType?: unknown; errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // a plain-text cause
  }
  return error.cause;
}

function writeManifest(path: string, manifest: Manifest): void {
  try {
    writeFileSync(path, `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    throw new CliError(`cannot write the manifest to ${path}: ${(error as Error).message}`, 1);
  }
}

export function report(outcome: Outcome, options: ReportOptions, io: { stdout: Output; stderr: Output }): number {
  const json = options.output === 'json';
  const where = outcome.executionArn ?? outcome.executionName ?? '';
  if (outcome.manifest) {
    if (options.manifestPath) writeManifest(options.manifestPath, outcome.manifest);
    io.stdout.write(json ? `${JSON.stringify(outcome.manifest, null, 2)}\n` : manifestTable(outcome.manifest, io.stdout.columns ?? 160));
    if (options.manifestPath && !json) io.stdout.write(`manifest written to ${options.manifestPath}\n`);
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
