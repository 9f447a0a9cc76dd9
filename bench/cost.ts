/**
 * What a benchmark scenario would cost on AWS, in US dollars, from what it used: Standard state transitions (retries
 * included), Lambda requests and GB-seconds (each function's memory as serverless.yml configures it, times the busy
 * time measured on the virtual clock: GetImageState's in-function looks are Lambda time), and S3 requests (the runs
 * bucket: targets file, ResultWriter, manifest). Prices come from one file, bench/prices.json, with its date and region.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface Prices {
  region: string;
  date: string;
  stepFunctionsPerTransition: number;
  lambdaPerRequest: number;
  lambdaArmPerGbSecond: number;
  s3PerPutRequest: number;
  s3PerGetRequest: number;
}

export const PRICES = JSON.parse(readFileSync(new URL('./prices.json', import.meta.url), 'utf8')) as Prices;

/** Each function's memory (MB) as deployed: its own memorySize, else the provider's. */
export function functionMemoryMb(): Record<string, number> {
  const config = parse(readFileSync(new URL('../serverless.yml', import.meta.url), 'utf8')) as {
    provider: { memorySize?: number };
    functions: Record<string, { memorySize?: number }>;
  };
  // Lambda's default when neither sets one: 128 MB; serverless.yml sets the provider's.
  const fallback = config.provider.memorySize ?? 128;
  return Object.fromEntries(Object.entries(config.functions).map(([name, f]) => [name, f.memorySize ?? fallback]));
}

export interface Usage {
  transitions: number;
  lambdaByFunction: Record<string, number>;
  lambdaBusyMsByFunction: Record<string, number>;
  /** By S3 command (PutObject, GetObject, ...). */
  s3Requests: Record<string, number>;
}

export interface Cost {
  stepFunctions: number;
  lambdaRequests: number;
  lambdaDuration: number;
  lambdaGbSeconds: number;
  s3: number;
  total: number;
}

const S3_GET_CLASS = new Set(['GetObject', 'HeadObject']);

export function costOf(usage: Usage, memory: Record<string, number> = functionMemoryMb(), prices: Prices = PRICES): Cost {
  const requests = Object.values(usage.lambdaByFunction).reduce((a, b) => a + b, 0);
  let gbSeconds = 0;
  for (const [fn, ms] of Object.entries(usage.lambdaBusyMsByFunction)) {
    const mb = memory[fn];
    if (mb === undefined) throw new Error(`serverless.yml has no function ${fn}`);
    gbSeconds += (mb / 1024) * (ms / 1000);
  }
  let s3 = 0;
  for (const [command, count] of Object.entries(usage.s3Requests)) s3 += count * (S3_GET_CLASS.has(command) ? prices.s3PerGetRequest : prices.s3PerPutRequest);
  const stepFunctions = usage.transitions * prices.stepFunctionsPerTransition;
  const lambdaRequests = requests * prices.lambdaPerRequest;
  const lambdaDuration = gbSeconds * prices.lambdaArmPerGbSecond;
  return { stepFunctions, lambdaRequests, lambdaDuration, lambdaGbSeconds: gbSeconds, s3, total: stepFunctions + lambdaRequests + lambdaDuration + s3 };
}
