/** Reading the input file: it must exist, be JSON, and pass the pipeline's own validation (parseInput). */
import { closeSync, openSync, readSync } from 'node:fs';
import { historyBudget } from '../functions/shared/budget';
import { InvalidInputError } from '../functions/shared/errors';
import { parseInput, type PipelineInput } from '../functions/shared/input';
import { STATE_PAYLOAD_BYTES } from '../functions/shared/payload';
import { targetPairs } from '../functions/shared/plan';
import { CliError } from './errors';
import type { TargetKey } from './progress';

export interface InputFile {
  /** The file's JSON as written: what the execution is started with. */
  raw: unknown;
  input: PipelineInput;
  /** Every (account, region) pair of the inline targets; empty when they come from targetsParameter. */
  targets: TargetKey[];
}

/**
 * The file's text, read up to Step Functions' 262,144-byte limit for an execution input and no further (a device
 * such as /dev/zero, or a huge file, is refused once past it, not read into memory).
 */
function readCapped(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(STATE_PAYLOAD_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > STATE_PAYLOAD_BYTES) {
      throw new CliError(
        `the input file ${path} is larger than ${STATE_PAYLOAD_BYTES.toLocaleString('en-US')} bytes, Step Functions' limit for an execution input; ` +
          'split the targets over several runs, or keep them in an SSM parameter (targetsParameter)',
        2,
      );
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** JSON.parse names a character offset; add the line and column an editor shows. */
function withLine(message: string, text: string): string {
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return message;
  const before = text.slice(0, Number(position)).split('\n');
  return `${message} (line ${before.length}, column ${(before[before.length - 1] ?? '').length + 1})`;
}

/** Read, parse and validate an input file; `adjust` (e.g. rekey mode, a retention dry run) edits its JSON first. */
export function readInputFile(path: string, adjust?: (raw: Record<string, unknown>) => Record<string, unknown>): InputFile {
  let text: string;
  try {
    text = readCapped(path);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new CliError(`cannot read the input file ${path}: ${why}`, 2);
  }
  // A UTF-8 byte-order mark (some Windows editors write one) is not part of the JSON: JSON.parse would refuse it.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  // UTF-16's marks (FF FE, FE FF) decode as U+FFFD: name the encoding rather than a garbled first character.
  else if (text.startsWith('\uFFFD\uFFFD')) throw new CliError(`the input file ${path} looks UTF-16 encoded; save it as UTF-8`, 2);
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
    if (adjust && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) raw = adjust(raw as Record<string, unknown>);
  } catch (error) {
    throw new CliError(`the input file ${path} is not valid JSON: ${withLine((error as Error).message, text)}`, 2);
  }
  try {
    const input = parseInput(raw);
    // OU entries are resolved at run time: only the explicit accounts are known here.
    const targets = targetPairs(input).map(({ accountId, region }) => ({ accountId, region }));
    return { raw, input, targets };
  } catch (error) {
    if (error instanceof InvalidInputError) throw new CliError(`${path}: ${error.message}`, 2);
    throw error;
  }
}

/** "valid: N targets (account × region pairs), one child execution each, C at once", or where they come from. */
export function describeValid(file: InputFile): string {
  if (file.input.targets === undefined) {
    return `valid: targets come from the SSM parameter ${file.input.targetsParameter ?? '(none)'} at run time`;
  }
  const ous = file.input.targets.flatMap((t) => (t.organizationalUnitId !== undefined ? [t.organizationalUnitId] : []));
  const fromOus = ous.length > 0 ? `; the accounts of ${ous.join(', ')} are resolved from AWS Organizations at run time (ami-pipeline doctor lists them)` : '';
  const n = file.targets.length;
  const extra = file.input.targetsParameter ? ` (plus settings from ${file.input.targetsParameter})` : '';
  const plan = historyBudget(n, file.input.copy.timeoutMinutes, file.input.verify.timeoutMinutes, file.input.maxConcurrency ?? null);
  if (n === 0) return `valid${extra}${fromOus}`;
  return `valid: ${n} target${n === 1 ? '' : 's'} (account × region pairs)${extra}, one child execution each, ${plan.running} at once${fromOus}`;
}

export function validate(path: string, io: { stdout: { write(text: string): unknown } }): number {
  io.stdout.write(`${describeValid(readInputFile(path))}\n`);
  return 0;
}
