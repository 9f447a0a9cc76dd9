/**
 * The scripted AWS the benchmark runs against: FakeAws (bench/fake-aws.ts) with its clock hooks on.
 * A copy takes T minutes times a fixed per-target factor in [0.9, 1.1] and reports its snapshot's progress in
 * whole percent; a test instance runs (InService) 90 s after it was launched; a fixed ~2% of EC2 calls are
 * throttled (RequestLimitExceeded), chosen by a hash so every run throttles the same calls. Each call costs
 * its caller's clock a little latency. It records when each copy was ready and when a status call first saw it.
 */
import type { Json } from '../local/asl';
import { FakeAws, type CallRecord } from './fake-aws';
import { awsError } from './fake-aws';
import { unitHash, type VirtualClocks } from './clock';

export const SOURCE_REGION = 'eu-west-1';
/** The regions each benchmark account copies into (ten per account). */
export const TARGET_REGIONS = [
  'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1',
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'ap-southeast-1',
] as const;

export interface BackendOptions {
  copyMinutes: number;
  /** Seconds from launch to a running (InService) test instance. */
  launchSeconds: number;
  /** Share of EC2 calls answered RequestLimitExceeded. */
  throttleRate: number;
  /** Simulated latency of one AWS call (ms), on the caller's clock. */
  callMs: number;
}

export const DEFAULT_BACKEND: Omit<BackendOptions, 'copyMinutes'> = { launchSeconds: 90, throttleRate: 0.02, callMs: 30 };

export interface CopyTiming {
  imageId: string;
  target: string;
  startedAt: number;
  readyAt: number;
  /** Clock time of the first call that saw it available (null: never seen). */
  seenAt: number | null;
}

export interface Backend {
  aws: FakeAws;
  input: Json;
  /** The input's (account, region) pairs. */
  pairs: { accountId: string; region: string }[];
  /** Calls answered RequestLimitExceeded. */
  throttled(): number;
  copies(): CopyTiming[];
  /** How long a copy into this target takes (ms). */
  copyMs(accountId: string, region: string): number;
  restore(): void;
}

/** Account-region pairs: accounts 100000000001, 100000000002, ... with up to ten regions each. */
function benchPairs(n: number): { accountId: string; region: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    accountId: String(100_000_000_001 + Math.floor(i / TARGET_REGIONS.length)),
    region: TARGET_REGIONS[i % TARGET_REGIONS.length] ?? SOURCE_REGION,
  }));
}

export function scriptedBackend(targets: number, clocks: VirtualClocks, options: BackendOptions): Backend {
  const aws = new FakeAws({ singleDispatch: true });
  const copyMs = (accountId: string, region: string) =>
    Math.round(options.copyMinutes * 60_000 * (0.9 + 0.2 * unitHash(`copy/${accountId}/${region}`)));
  const ec2Calls = new Map<string, number>();
  const seen = new Map<string, number>();
  let throttled = 0;

  aws.hooks = {
    now: (accountId, region) => clocks.of(accountId, region).ms,
    copyMs,
    launchMs: options.launchSeconds * 1000,
    beforeCall: (call: CallRecord) => {
      clocks.current().ms += options.callMs;
      if (call.service !== 'ec2') return;
      const key = `${call.account}/${call.region}`;
      const n = (ec2Calls.get(key) ?? 0) + 1;
      ec2Calls.set(key, n);
      if (unitHash(`throttle/${key}/${n}`) < options.throttleRate) {
        throttled += 1;
        throw awsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
      }
    },
    afterCall: (call: CallRecord, output: unknown) => {
      if (aws.calls.length % 1000 === 0) aws.forgetMockHistory();
      if (call.command !== 'DescribeImages') return;
      for (const image of (output as { Images?: { ImageId?: string; State?: string }[] }).Images ?? []) {
        if (image.State !== 'available' || !image.ImageId || seen.has(image.ImageId)) continue;
        if (aws.images.get(image.ImageId)?.readyAt === undefined) continue;
        seen.set(image.ImageId, clocks.of(call.account, call.region).ms);
      }
    },
  };

  const pairs = benchPairs(targets);
  const byAccount = new Map<string, string[]>();
  for (const { accountId, region } of pairs) {
    aws.addKey(accountId, region);
    byAccount.set(accountId, [...(byAccount.get(accountId) ?? []), region]);
  }
  const input: Json = {
    source: { imageId: aws.addSourceImage(SOURCE_REGION), region: SOURCE_REGION },
    targets: [...byAccount].map(([accountId, regions]) => ({ accountId, regions, kmsKey: 'alias/ami-encryption' })),
    verify: { mode: 'auto-scaling' },
    copy: { timeoutMinutes: 180 },
  };

  return {
    aws,
    input,
    pairs,
    throttled: () => throttled,
    copyMs,
    copies: () =>
      [...aws.images.values()].flatMap((i) =>
        i.readyAt === undefined || i.startedAt === undefined
          ? []
          : [{ imageId: i.id, target: `${i.account}/${i.region}`, startedAt: i.startedAt, readyAt: i.readyAt, seenAt: seen.get(i.id) ?? null }],
      ),
    restore: () => aws.restore(),
  };
}
