/**
 * What ResolveSource hands the rest of the run: the resolved source, one item per (account, region),
 * and the settings each step needs. Payloads stay small: IDs, names and states.
 */
import * as z from 'zod';
import { InvalidInputError } from './errors';
import type { OuExpansion, ResolvedTarget } from './organization';
import type { PipelineInput, Target } from './input';

export const resolvedSourceSchema = z.object({
  imageId: z.string(),
  region: z.string(),
  accountId: z.string(),
  name: z.string(),
  architecture: z.string(),
  rootDeviceName: z.string(),
  snapshotIds: z.array(z.string()),
  /** Total size of the image's snapshots (GiB): sizes the first wait for a copy. */
  sizeGiB: z.number(),
  /** The source's user tags that copy.copySourceTags selects (read in the builder account: CopyImage cannot copy them across accounts). */
  tags: z.record(z.string(), z.string()),
  /**
   * Target accounts that had these permissions when the run resolved its source (what the doctor shows). ShareSource
   * decides afresh through the share ledger which of them were given by hand (functions/shared/ledger.ts).
   */
  preexistingShares: z.object({
    launchPermission: z.array(z.string()),
    createVolumePermission: z.record(z.string(), z.array(z.string())),
  }),
});
export type ResolvedSource = z.infer<typeof resolvedSourceSchema>;

export const targetPairSchema = z.object({
  accountId: z.string(),
  /** The OU entry that reached this account; null for an explicit accountId entry. */
  organizationalUnitId: z.string().nullable().default(null),
  region: z.string(),
  kmsKey: z.string(),
  subnetId: z.string().nullable(),
});
export type TargetPair = z.infer<typeof targetPairSchema>;

export const settingsSchema = z.object({
  mode: z.enum(['distribute', 'rekey']),
  targetRoleName: z.string(),
  externalId: z.string().nullable(),
  verify: z.object({
    mode: z.enum(['auto-scaling', 'run-instances', 'none']),
    instanceType: z.string().nullable(),
    timeoutMinutes: z.number(),
  }),
  /** Copy name template, timeout, deprecation (days, null: none) and the user's tag templates. */
  copy: z.object({
    name: z.string().nullable(),
    timeoutMinutes: z.number(),
    deprecateAfterDays: z.number().int().nullable(),
    tags: z.record(z.string(), z.string()),
  }),
  /** Parameter name template (placeholders not yet expanded), launch templates, deregistration protection. */
  publish: z.object({
    parameterName: z.string().nullable(),
    launchTemplates: z.array(z.string()),
    protect: z.union([z.boolean(), z.literal('with-cooldown')]),
  }),
  /** Lineage as given (the handlers fall back to the expanded publish.parameterName), copies to keep, dry run, grace and launch window. */
  retention: z.object({
    lineage: z.string().nullable(),
    keep: z.number().int(),
    dryRun: z.boolean(),
    graceDays: z.number().int(),
    keepIfLaunchedWithinDays: z.number().int(),
  }),
  /** A new-account run: a role or key not there yet is waited for (TargetNotYetDeployedError), not a failure. */
  awaitDeployment: z.boolean().default(false),
});
export type Settings = z.infer<typeof settingsSchema>;

/** The input of every per-target step: `$.item` of a Map iteration. */
export const targetItemSchema = z.object({
  executionName: z.string().min(1),
  source: resolvedSourceSchema,
  target: targetPairSchema,
  settings: settingsSchema,
});
export type TargetItem = z.infer<typeof targetItemSchema>;

/** A target's copy as the steps after CopyEncryptImage name it (`$.copy`). */
export const copyRefSchema = z.object({ imageId: z.string(), kmsKeyArn: z.string() });
export type CopyRef = z.infer<typeof copyRefSchema>;

/**
 * Where a run keeps its files in the builder account's runs bucket (see functions/shared/run-store.ts): the targets
 * the Distributed Map reads (ItemReader), the Map Run's results (ResultWriter) and the run's manifest, side by side.
 */
export interface RunFiles {
  bucket: string;
  /** `runs/<execution name>`. */
  prefix: string;
  /** JSON array of TargetPair, one item per child execution. */
  targetsKey: string;
  /** ResultWriter's prefix: it writes `<prefix>/<map run id>/manifest.json` and the SUCCEEDED/FAILED/PENDING files. */
  resultsPrefix: string;
  /** The run's manifest (every target's full line), written by RecordManifest. */
  manifestKey: string;
}

export interface RunPlan {
  executionName: string;
  skipped: boolean;
  skipReason: string | null;
  source: ResolvedSource | null;
  /** Target accounts other than the builder account: the ones the source is shared with. */
  shareAccountIds: string[];
  /** Account-region pairs: the Distributed Map's items, read from `files.targetsKey`. */
  targetCount: number;
  /** Child executions running at once (the Distributed Map's MaxConcurrency; 0: no limit). */
  maxConcurrency: number;
  files: RunFiles;
  settings: Settings;
  /** What each organizationalUnitId entry expanded to (found, targeted, skipped with state, excluded); empty without OU entries. */
  organization: OuExpansion[];
  /** Where NotifyCompletion also sends its summary. */
  notify: { topicArn: string | null };
}

/** Parse a payload the state machine built; a mismatch is a bug in the definition, reported by field. */
export function parsePayload<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new InvalidInputError(
      result.error.issues.map((i) => `${what}.${i.path.map(String).join('.')}: ${i.message} (the state machine passed a malformed payload)`),
    );
  }
  return result.data;
}

/** The key reference to use in one region of a target. */
export function keyFor(target: Pick<Target, 'kmsKey'>, targetRegion: string): string {
  if (typeof target.kmsKey === 'string') return target.kmsKey;
  const key = target.kmsKey[targetRegion];
  if (key === undefined) throw new InvalidInputError([`kmsKey: no key given for region ${targetRegion}`]);
  return key;
}

/** The settings every per-target step needs, from the validated input. */
export function settingsOf(input: PipelineInput): RunPlan['settings'] {
  return {
    mode: input.mode,
    targetRoleName: input.targetRoleName,
    externalId: input.externalId ?? null,
    verify: { mode: input.verify.mode, instanceType: input.verify.instanceType ?? null, timeoutMinutes: input.verify.timeoutMinutes },
    copy: {
      name: input.copy.name ?? null,
      timeoutMinutes: input.copy.timeoutMinutes,
      deprecateAfterDays: input.copy.deprecateAfterDays,
      tags: input.copy.tags,
    },
    publish: { parameterName: input.publish.parameterName ?? null, launchTemplates: input.publish.launchTemplates, protect: input.publish.protect },
    retention: {
      lineage: input.retention.lineage ?? null,
      keep: input.retention.keep,
      dryRun: input.retention.dryRun,
      graceDays: input.retention.graceDays,
      keepIfLaunchedWithinDays: input.retention.keepIfLaunchedWithinDays,
    },
    awaitDeployment: input.newAccount !== undefined,
  };
}

/** The inline accountId entries as resolved targets (OU entries need Organizations: resolveTargets). */
export function explicitTargets(input: PipelineInput): ResolvedTarget[] {
  return (input.targets ?? []).flatMap(({ accountId, organizationalUnitId: _ou, excludeAccountIds: _ex, ...rest }) =>
    accountId !== undefined ? [{ ...rest, accountId, organizationalUnitId: null }] : [],
  );
}

/**
 * Every (target entry, region) pair of a list of targets, in order: the one expansion of targets into the pairs a
 * run works on (one child execution each). `index` is the entry's position in the list.
 */
export function regionPairs<T extends { readonly regions: readonly string[] }>(targets: readonly T[]): { target: T; index: number; region: string }[] {
  return targets.flatMap((target, index) => target.regions.map((region) => ({ target, index, region })));
}

/** One item per (account, region), with the key and launch-check subnet of that region. */
export function targetPairs(input: PipelineInput, targets: ResolvedTarget[] = explicitTargets(input)): TargetPair[] {
  return regionPairs(targets).map(({ target: t, region: r }) => ({
    accountId: t.accountId,
    organizationalUnitId: t.organizationalUnitId,
    region: r,
    kmsKey: keyFor(t, r),
    subnetId: t.subnetIds?.[r] ?? input.verify.subnetIds?.[r] ?? null,
  }));
}
