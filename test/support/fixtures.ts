/** Shared test data: a resolved source, a target item, and real AWS error shapes. */
import type { RunPlan, TargetItem } from '../../functions/shared/plan';
import { createClientFactory, type ClientFactory } from '../../functions/shared/clients';
import { PipelineError } from '../../functions/shared/errors';

import { awsError, BUILDER } from '../../bench/fake-aws';

export { awsError, BUILDER };

export const ACCOUNT_A = '111111111111';
export const ACCOUNT_B = '222222222222';
export const SOURCE_IMAGE = 'ami-0123456789abcdef0';
export const SOURCE_SNAPSHOT = 'snap-0123456789abcdef0';
export const KEY_A_EU = `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111`;

export const source: NonNullable<RunPlan['source']> = {
  imageId: SOURCE_IMAGE,
  region: 'eu-west-1',
  accountId: BUILDER,
  name: 'base-image-2026-11-29',
  architecture: 'x86_64',
  rootDeviceName: '/dev/xvda',
  sizeGiB: 8,
  snapshotIds: [SOURCE_SNAPSHOT],
  tags: {},
  preexistingShares: { launchPermission: [], createVolumePermission: { [SOURCE_SNAPSHOT]: [] } },
};

/** A run's settings when the input gives none: the defaults the input reference (README.md) lists. */
export const DEFAULT_SETTINGS: TargetItem['settings'] = {
  mode: 'distribute',
  targetRoleName: 'AmiPipelineTarget',
  externalId: null,
  verify: { mode: 'auto-scaling', instanceType: null, timeoutMinutes: 15 },
  copy: { name: null, timeoutMinutes: 180, deprecateAfterDays: 365, tags: {} },
  publish: { parameterName: null, launchTemplates: [], protect: true },
  retention: { lineage: null, keep: 3, dryRun: false, graceDays: 7, keepIfLaunchedWithinDays: 14 },
  awaitDeployment: false,
};

export function item(overrides: Partial<TargetItem['target']> = {}, settings: Partial<TargetItem['settings']> = {}): TargetItem {
  return {
    executionName: 'exec-1',
    source,
    target: { accountId: ACCOUNT_A, organizationalUnitId: null, region: 'eu-west-1', kmsKey: 'alias/ami-encryption', subnetId: null, ...overrides },
    settings: { ...DEFAULT_SETTINGS, ...settings },
  };
}

/** A client factory whose target clients skip AssumeRole (credentials are static), for mocked-client tests. */
export function testClients(): ClientFactory {
  const real = createClientFactory('eu-west-1');
  return { builder: () => real.builder(), target: () => real.builder() };
}

export const fixedNow = () => new Date('2026-11-29T12:00:00.000Z');

/** The error a promise rejects with, failing the test if it resolves or throws something other than a PipelineError. */
export async function rejection(promise: Promise<unknown>): Promise<PipelineError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof PipelineError)) throw new Error(`expected a PipelineError, got ${String(error)}`);
  return error;
}
