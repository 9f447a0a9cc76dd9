/**
 * A Map state in DISTRIBUTED mode, as Step Functions runs it and aws-local-stepfunctions cannot: the items come
 * from the state's input (ItemsPath) or from S3 (ItemReader, JSON), each item (after ItemSelector) is the input of
 * its own child execution of the ItemProcessor, at most MaxConcurrency at once (0: no limit), and the Map Run fails
 * with States.ExceedToleratedFailureThreshold only past ToleratedFailurePercentage / ToleratedFailureCount (the
 * default is 0: any failed child fails it). With a ResultWriter, the children's results go to S3 as AWS writes them
 * (manifest.json and SUCCEEDED_0.json, FAILED_0.json, PENDING_0.json under `<Prefix>/<map run id>/`) and the state's
 * result is `{ MapRunArn, ResultWriterDetails: { Bucket, Key } }`; without one, the array of the children's outputs.
 *
 * References: "Map state in Distributed mode", "ItemReader (Map)", "ResultWriter (Map)", "Tolerated failure
 * threshold for Distributed Map state" in the AWS Step Functions Developer Guide.
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
  status: 'SUCCEEDED' | 'FAILED';
  input: Json;
  output?: Json;
  error?: { name: string; cause: string };
  startDate: string;
  stopDate: string;
}

export interface MapRunContext {
  /** The parent's execution name and ARN, and the state machine's name (for the ARNs AWS gives Map Runs and children). */
  executionName: string;
  executionArn: string;
  stateMachineName: string;
  region: string;
  account: string;
  /** Runs one child execution to its end. */
  runChild(input: Json, name: string, arn: string): Promise<ChildOutcome>;
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

/** Runs a Distributed Map state on its (effective) input; returns the state's result. */
export async function runDistributedMap(map: DistributedMapConfig, input: Json, ctx: MapRunContext): Promise<Json> {
  const { state } = map;
  const context: Json = { Execution: { Id: ctx.executionArn, Name: ctx.executionName } };
  const items = await readItems(state, input, context, ctx.region);
  const label = typeof state.Label === 'string' ? state.Label : map.name;
  const mapRunId = randomUUID();
  const mapRunArn = `arn:aws:states:${ctx.region}:${ctx.account}:mapRun:${ctx.stateMachineName}/${label}:${mapRunId}`;
  const concurrencyValue = state.MaxConcurrency ?? (typeof state.MaxConcurrencyPath === 'string' ? readPath(state.MaxConcurrencyPath, input, context) : 0);
  const concurrency = Number(concurrencyValue) > 0 ? Number(concurrencyValue) : Number.POSITIVE_INFINITY;
  // Either threshold fails the Map Run when passed; with neither, any failed child does (a 0 % default).
  const percentValue = state.ToleratedFailurePercentage ?? (typeof state.ToleratedFailurePercentagePath === 'string' ? readPath(state.ToleratedFailurePercentagePath, input, context) : undefined);
  const countValue = state.ToleratedFailureCount ?? (typeof state.ToleratedFailureCountPath === 'string' ? readPath(state.ToleratedFailureCountPath, input, context) : undefined);
  const toleratedPercent = percentValue !== undefined ? Number(percentValue) : countValue === undefined ? 0 : undefined;
  const toleratedCount = countValue !== undefined ? Number(countValue) : undefined;
  const exceeded = (failed: number) =>
    (toleratedPercent !== undefined && (failed * 100) / Math.max(1, items.length) > toleratedPercent) || (toleratedCount !== undefined && failed > toleratedCount);

  const outcomes: (ChildOutcome | undefined)[] = new Array<ChildOutcome | undefined>(items.length);
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < items.length && !exceeded(failed)) {
      const index = next++;
      const itemContext: Json = { ...(context as Obj), Map: { Item: { Index: index, Value: items[index] ?? null } } };
      const childInput = state.ItemSelector ? applyTemplate(state.ItemSelector as Json, input, itemContext) : (items[index] ?? null);
      const name = randomUUID();
      const arn = `arn:aws:states:${ctx.region}:${ctx.account}:execution:${ctx.stateMachineName}/${label}:${name}`;
      const outcome = await ctx.runChild(childInput, name, arn);
      outcomes[index] = outcome;
      if (outcome.status !== 'SUCCEEDED') failed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(items.length, concurrency) }, worker));

  const done = outcomes.filter((o): o is ChildOutcome => o !== undefined);
  let result: Json = done.map((o) => o.output ?? null);
  if (state.ResultWriter) {
    const writer = state.ResultWriter as { Resource?: string; Parameters?: Json };
    if (writer.Resource !== 'arn:aws:states:::s3:putObject') throw new MapRunError(`ResultWriter ${writer.Resource ?? '?'}: the local runner writes to S3 only`);
    const { Bucket, Prefix } = applyTemplate(writer.Parameters ?? {}, input, context) as { Bucket: string; Prefix?: string };
    result = await writeResults(Bucket, `${Prefix ? `${Prefix.replace(/\/$/, '')}/` : ''}${mapRunId}`, mapRunArn, done, ctx);
  }
  if (exceeded(failed)) {
    const error = new MapRunError(`The specified tolerated failure threshold was exceeded (${failed} of ${items.length} child executions failed)`);
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
    RedriveCount: 0,
    RedriveStatus: o.status === 'SUCCEEDED' ? 'NOT_REDRIVABLE' : 'REDRIVABLE',
    StartDate: o.startDate,
    StateMachineArn: `arn:aws:states:${ctx.region}:${ctx.account}:stateMachine:${ctx.stateMachineName}`,
    Status: o.status,
    StopDate: o.stopDate,
  });
  const files: Record<string, { Key: string; Size: number }[]> = { FAILED: [], PENDING: [], SUCCEEDED: [] };
  for (const status of ['SUCCEEDED', 'FAILED'] as const) {
    const entries = outcomes.filter((o) => o.status === status).map(entry);
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
