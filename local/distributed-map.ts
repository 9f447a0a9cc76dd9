/**
 * A Map state in DISTRIBUTED mode, as Step Functions runs it and aws-local-stepfunctions cannot: the items come
 * from the state's input (ItemsPath) or from S3 (ItemReader, JSON), each item (after ItemSelector) is the input of
 * its own child execution of the ItemProcessor, at most MaxConcurrency at once (0: no limit), and the Map Run fails
 * with States.ExceedToleratedFailureThreshold only past ToleratedFailurePercentage / ToleratedFailureCount (the
 * default is 0: any failed child fails it). With a ResultWriter, the children's results go to S3 as AWS writes them
 * (manifest.json and SUCCEEDED_0.json, FAILED_0.json, PENDING_0.json under `<Prefix>/<map run id>/`) and the state's
 * result is `{ MapRunArn, ResultWriterDetails: { Bucket, Key } }`; without one, the array of the children's outputs.
 *
 * A Map Run can be redriven (its parent redriven while the Map state had not exited): the items stay those of the first
 * attempt, succeeded children are kept, and each unsuccessful child is redriven (the runner resumes it at its own
 * unsuccessful state); a Map Run is redriven at most 1,000 times (States.Runtime past it).
 *
 * References: "Map state in Distributed mode", "ItemReader (Map)", "ResultWriter (Map)", "Tolerated failure
 * threshold for Distributed Map state", "Redriving Map Runs" in the AWS Step Functions Developer Guide.
 * Limits of this emulation: children past the threshold are not started (AWS may start some), and children already
 * running when it is passed run to their end (AWS aborts them).
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Json } from './asl';

export interface DistributedMapConfig {
  name: string;
  /** The Map state as written, without its ItemProcessor. */
  state: Record<string, unknown>;
}

export interface ChildOutcome {
  name: string;
  arn: string;
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
  input: Json;
  output?: Json;
  error?: { name: string; cause: string };
  startDate: string;
  stopDate: string;
  /** Times this child was redriven (0 on its first attempt). */
  redriveCount: number;
  /** What its redrive needs (local/redrive.ts): set on an unsuccessful Standard child. */
  redrive?: { historyEvents: number; resume: { state: string; input: Json } | undefined };
}

/** A Map Run as the local runner keeps it, so that a redrive of its parent can redrive it. */
export interface MapRunState {
  arn: string;
  id: string;
  /** Each item's child input (after ItemSelector), in item order. */
  inputs: Json[];
  /** Each item's child execution once it ended, in item order (undefined: not started, or still running). */
  children: (ChildOutcome | undefined)[];
  /** Times this Map Run was redriven. */
  redriveCount: number;
}

/** Redrives of one Map Run ("Redriving Map Runs": a hard limit; past it, States.Runtime). */
export const MAP_RUN_REDRIVES_MAX = 1000;

export interface MapRunContext {
  /** The parent's execution name and ARN, and the state machine's name (for the ARNs AWS gives Map Runs and children). */
  executionName: string;
  executionArn: string;
  stateMachineName: string;
  region: string;
  account: string;
  /** Runs one child execution to its end; with the outcome of its last attempt, redrives it. */
  runChild(input: Json, name: string, arn: string, previous?: ChildOutcome): Promise<ChildOutcome>;
  /** The Map Run to redrive (its parent was redriven at this Map state), if any. */
  previous?: MapRunState;
  /** Called once the Map Run has its items and ARN, before any child starts: the runner keeps it for a redrive. */
  onStart?(state: MapRunState): void;
}

export class MapRunError extends Error {}

type Obj = Record<string, Json>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A reference path: `$`, `$.a.b`, `$.a[0]` on the input, `$$.x.y` on the context object. */
export function readPath(path: string, input: Json, context: Json): Json {
  const [root, rest] = path.startsWith('$$') ? [context, path.slice(2)] : path.startsWith('$') ? [input, path.slice(1)] : [undefined, path];
  if (root === undefined) throw new MapRunError(`"${path}" is not a reference path`);
  let value: Json | undefined = root;
  for (const m of rest.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[1] !== undefined) value = isObj(value) ? value[m[1]] : undefined;
    else value = Array.isArray(value) ? value[Number(m[2])] : undefined;
    if (value === undefined) break;
  }
  if (value === undefined) {
    const error = new MapRunError(`Invalid path '${path}': the path does not match anything in the input`);
    error.name = 'States.Runtime';
    throw error;
  }
  return value;
}

/** Parameters / ItemSelector: keys ending in `.$` take the value at their path (intrinsic functions are not supported here). */
export function applyTemplate(template: Json, input: Json, context: Json): Json {
  if (Array.isArray(template)) return template.map((t) => applyTemplate(t, input, context));
  if (!isObj(template)) return template;
  const out: Obj = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string' || !value.startsWith('$')) throw new MapRunError(`${key}: the local runner supports paths only, not "${String(value)}"`);
      out[key.slice(0, -2)] = readPath(value, input, context);
    } else out[key] = applyTemplate(value, input, context);
  }
  return out;
}

function s3(region: string): S3Client {
  return new S3Client({ region });
}

async function readItems(state: Record<string, unknown>, input: Json, context: Json, region: string): Promise<Json[]> {
  const reader = state.ItemReader as { Resource?: string; ReaderConfig?: { InputType?: string }; Parameters?: Json } | undefined;
  let items: Json;
  if (reader) {
    if (reader.Resource !== 'arn:aws:states:::s3:getObject' || reader.ReaderConfig?.InputType !== 'JSON') {
      throw new MapRunError(`ItemReader ${reader.Resource ?? '?'} (${reader.ReaderConfig?.InputType ?? 'no InputType'}): the local runner reads JSON files from S3 only`);
    }
    const { Bucket, Key } = applyTemplate(reader.Parameters ?? {}, input, context) as { Bucket: string; Key: string };
    const out = await s3(region).send(new GetObjectCommand({ Bucket, Key }));
    items = JSON.parse((await out.Body?.transformToString('utf-8')) ?? 'null') as Json;
  } else {
    items = readPath(typeof state.ItemsPath === 'string' ? state.ItemsPath : '$', input, context);
  }
  if (!Array.isArray(items)) {
    const error = new MapRunError('The Map state\'s items are not a JSON array');
    error.name = 'States.ItemReaderFailed';
    throw error;
  }
  return items;
}

/** Runs a Distributed Map state on its (effective) input, or redrives its Map Run; returns the state's result. */
export async function runDistributedMap(map: DistributedMapConfig, input: Json, ctx: MapRunContext): Promise<Json> {
  const { state } = map;
  const context: Json = { Execution: { Id: ctx.executionArn, Name: ctx.executionName } };
  const label = typeof state.Label === 'string' ? state.Label : map.name;
  const { previous } = ctx;
  if (previous && previous.redriveCount >= MAP_RUN_REDRIVES_MAX) {
    const error = new MapRunError(`The Map Run ${previous.arn} was redriven ${MAP_RUN_REDRIVES_MAX} times, the most Step Functions allows`);
    error.name = 'States.Runtime';
    throw error;
  }
  // A redriven Map Run keeps its items, its ARN and its succeeded children.
  const inputs = previous
    ? previous.inputs
    : (await readItems(state, input, context, ctx.region)).map((item, index) =>
        state.ItemSelector ? applyTemplate(state.ItemSelector as Json, input, { ...(context as Obj), Map: { Item: { Index: index, Value: item } } }) : item,
      );
  const mapRunId = previous?.id ?? randomUUID();
  const run: MapRunState = {
    arn: previous?.arn ?? `arn:aws:states:${ctx.region}:${ctx.account}:mapRun:${ctx.stateMachineName}/${label}:${mapRunId}`,
    id: mapRunId,
    inputs,
    children: previous ? [...previous.children] : new Array<ChildOutcome | undefined>(inputs.length),
    redriveCount: previous ? previous.redriveCount + 1 : 0,
  };
  ctx.onStart?.(run);
  const concurrencyValue = state.MaxConcurrency ?? (typeof state.MaxConcurrencyPath === 'string' ? readPath(state.MaxConcurrencyPath, input, context) : 0);
  const concurrency = Number(concurrencyValue) > 0 ? Number(concurrencyValue) : Number.POSITIVE_INFINITY;
  // Either threshold fails the Map Run when passed; with neither, any failed child does (a 0 % default).
  const percentValue = state.ToleratedFailurePercentage ?? (typeof state.ToleratedFailurePercentagePath === 'string' ? readPath(state.ToleratedFailurePercentagePath, input, context) : undefined);
  const countValue = state.ToleratedFailureCount ?? (typeof state.ToleratedFailureCountPath === 'string' ? readPath(state.ToleratedFailureCountPath, input, context) : undefined);
  const toleratedPercent = percentValue !== undefined ? Number(percentValue) : countValue === undefined ? 0 : undefined;
  const toleratedCount = countValue !== undefined ? Number(countValue) : undefined;
  const exceeded = (failed: number) =>
    (toleratedPercent !== undefined && (failed * 100) / Math.max(1, inputs.length) > toleratedPercent) || (toleratedCount !== undefined && failed > toleratedCount);

  // What runs: every item, or on a redrive the items whose child did not succeed.
  const pending = inputs.map((_, index) => index).filter((index) => run.children[index]?.status !== 'SUCCEEDED');
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < pending.length && !exceeded(failed)) {
      const index = pending[next++] ?? 0;
      const last = run.children[index];
      const name = last?.name ?? randomUUID();
      const arn = last?.arn ?? `arn:aws:states:${ctx.region}:${ctx.account}:execution:${ctx.stateMachineName}/${label}:${name}`;
      const outcome = await ctx.runChild(inputs[index] ?? null, name, arn, last);
      run.children[index] = outcome;
      if (outcome.status !== 'SUCCEEDED') failed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(pending.length, concurrency) }, worker));

  const done = run.children.filter((o): o is ChildOutcome => o !== undefined);
  let result: Json = done.map((o) => o.output ?? null);
  if (state.ResultWriter) {
    const writer = state.ResultWriter as { Resource?: string; Parameters?: Json };
    if (writer.Resource !== 'arn:aws:states:::s3:putObject') throw new MapRunError(`ResultWriter ${writer.Resource ?? '?'}: the local runner writes to S3 only`);
    const { Bucket, Prefix } = applyTemplate(writer.Parameters ?? {}, input, context) as { Bucket: string; Prefix?: string };
    result = await writeResults(Bucket, `${Prefix ? `${Prefix.replace(/\/$/, '')}/` : ''}${mapRunId}`, run.arn, done, ctx);
  }
  const failures = done.filter((o) => o.status !== 'SUCCEEDED').length;
  if (exceeded(failures)) {
    const error = new MapRunError(`The specified tolerated failure threshold was exceeded (${failures} of ${inputs.length} child executions failed)`);
    error.name = 'States.ExceedToleratedFailureThreshold';
    throw error;
  }
  return result;
}

const json = (value: Json | undefined) => JSON.stringify(value ?? null);

/** ResultWriter's files, in the shape AWS writes them (Transformation NONE: inputs and outputs as JSON strings). */
async function writeResults(bucket: string, base: string, mapRunArn: string, outcomes: ChildOutcome[], ctx: MapRunContext): Promise<Json> {
  const client = s3(ctx.region);
  const entry = (o: ChildOutcome) => ({
    ExecutionArn: o.arn,
    Input: json(o.input),
    InputDetails: { Included: true },
    Name: o.name,
    ...(o.status === 'SUCCEEDED' ? { Output: json(o.output), OutputDetails: { Included: true } } : { Error: o.error?.name ?? 'States.Runtime', Cause: o.error?.cause ?? '' }),
    RedriveCount: o.redriveCount,
    RedriveStatus: o.status === 'SUCCEEDED' ? 'NOT_REDRIVABLE' : 'REDRIVABLE',
    StartDate: o.startDate,
    StateMachineArn: `arn:aws:states:${ctx.region}:${ctx.account}:stateMachine:${ctx.stateMachineName}`,
    Status: o.status,
    StopDate: o.stopDate,
  });
  const files: Record<string, { Key: string; Size: number }[]> = { FAILED: [], PENDING: [], SUCCEEDED: [] };
  // Aborted and timed-out children go with the failed ones (the files are SUCCEEDED, FAILED and PENDING).
  for (const status of ['SUCCEEDED', 'FAILED'] as const) {
    const entries = outcomes.filter((o) => (o.status === 'SUCCEEDED') === (status === 'SUCCEEDED')).map(entry);
    if (entries.length === 0) continue;
    const Key = `${base}/${status}_0.json`;
    const Body = JSON.stringify(entries);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentType: 'application/json' }));
    files[status]?.push({ Key, Size: Buffer.byteLength(Body) });
  }
  const Key = `${base}/manifest.json`;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: JSON.stringify({ DestinationBucket: bucket, MapRunArn: mapRunArn, ResultFiles: files }), ContentType: 'application/json' }));
  return { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket: bucket, Key } };
}
