/**
 * The execution input: one contract for the console, the schedule, the EventBridge rule and the CLI.
 * `parseInput` validates everything before any AWS call and reports every bad field at once,
 * each with what to change. The JSON Schema in schema/ is generated from `inputSchema`.
 */
import { partition } from '@aws-sdk/core/client';
import * as z from 'zod';
import { InvalidInputError } from './errors';
import { MAX_TAGS_PER_RESOURCE, MAX_USER_TAGS, PIPELINE_TAG_COUNT } from './tags';
import { mostPairsThatFit, payloadsOverLimit, STATE_PAYLOAD_BYTES } from './payload';
import { historyBudget, MAX_HISTORY_EVENTS_PER_EXECUTION, MAX_PAIRS_PER_RUN } from './budget';
import { regionPairs } from './plan';
import type { OuExpansion } from './manifest-schema';

const ACCOUNT_RE = /^\d{12}$/;
const AMI_RE = /^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const REGION_RE = /^(?:[a-z]{2}|us-gov|us-iso[a-z]?|eu-isoe)-[a-z]+-\d{1,2}$/;
const SUBNET_RE = /^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const ROLE_NAME_RE = /^[\w+=,.@-]{1,64}$/;
const EXTERNAL_ID_RE = /^[\w+=,.@:/-]{2,1224}$/;
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const KEY_ID_RE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ALIAS_RE = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const KMS_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;
const SSM_NAME_RE = /^\/?[a-zA-Z0-9_.\-/]{1,1011}$/;
const TAG_KEY_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
export const NAME_PLACEHOLDERS = ['sourceName', 'sourceImageId', 'accountId', 'region', 'date', 'executionName'] as const;
const AMI_NAME_CHARS_RE = /^[a-zA-Z0-9()[\] ./\-'@_{}]+$/;
export const PARAMETER_PLACEHOLDERS = ['sourceName', 'sourceImageId'] as const;
const PARAMETER_TEMPLATE_RE = /^\/[a-zA-Z0-9_.\-/{}]{1,1010}$/;
const LAUNCH_TEMPLATE_NAME_RE = /^[a-zA-Z0-9().\-/_]{3,128}$/;
const LINEAGE_RE = /^[a-zA-Z0-9_.\-/:]{1,128}$/;
export { MAX_TAGS_PER_RESOURCE, MAX_USER_TAGS, PIPELINE_TAG_COUNT } from './tags';
const RESERVED_TAG_PREFIXES = ['aws:', 'ami-pipeline:'];
const SNS_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov):sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/;
// Organizations' ID patterns (API reference, ParentId): an OU "ou-" + root part + OU part, a root "r-" + 4-32.
const OU_RE = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;
const ROOT_RE = /^r-[0-9a-z]{4,32}$/;
const ROLE_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov):iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

const accountId = z.string({ error: 'must be a string of 12 digits, e.g. "111111111111"' }).regex(ACCOUNT_RE, {
  error: 'must be 12 digits, e.g. "111111111111" (quote it: as a JSON number leading zeros are lost)',
});
const region = z
  .string({ error: 'must be a region name such as "eu-west-1"' })
  .regex(REGION_RE, { error: 'must be a region name such as "eu-west-1"' });
/**
 * Whether the AWS SDK's partition data (partitions.json, shipped in @aws-sdk/core) lists the region. partition()
 * merges a listed region's entry, which carries its description, into the result; an unlisted name that only fits a
 * partition's pattern gets none.
 */
export function sdkKnowsRegion(name: string): boolean {
  return (partition(name) as { description?: string }).description !== undefined;
}
const regionKey = z.string().regex(REGION_RE, { error: 'keys must be region names such as "eu-west-1"' });
const kmsKeyRef = z
  .string({ error: 'must be a KMS key: "alias/NAME", a key ID, or a key or alias ARN in the target account' })
  .refine((s) => ALIAS_RE.test(s) || KEY_ID_RE.test(s) || KMS_ARN_RE.test(s), {
    error: 'must be a KMS key: "alias/NAME", a key ID, or a key or alias ARN in the target account',
  })
  .refine((s) => !/^(arn:[^:]+:kms:[^:]*:\d{12}:)?alias\/aws\//.test(s), {
    error:
      'is an AWS managed key (alias/aws/...): snapshots encrypted with it cannot be shared or granted to Auto Scaling; give the target account\'s own customer managed key (see templates/ for one)',
  });
const tagMap = z
  .record(z.string().regex(TAG_KEY_RE, { error: 'tag keys must be 1-128 characters' }), z.string().max(256, { error: 'tag values must be at most 256 characters' }))
  .refine((m) => Object.keys(m).length > 0, { error: 'must name at least one tag, or be left out' });

const userTagKey = z
  .string()
  .regex(TAG_KEY_RE, { error: 'tag keys must be 1-128 letters, digits, spaces and _ . : / = + - @' })
  .refine((k) => !RESERVED_TAG_PREFIXES.some((p) => k.toLowerCase().startsWith(p)), {
    error: 'tag keys may not start with "aws:" (reserved by AWS) or "ami-pipeline:" (the pipeline\'s own tags); choose another key',
  });
const copyTags = z
  .record(
    userTagKey,
    z
      .string()
      .max(256, { error: 'tag values must be at most 256 characters once expanded' })
      .refine((t) => [...t.matchAll(/\{([^}]*)\}/g)].every((m) => (NAME_PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')), {
        error: `uses an unknown placeholder; known ones are ${NAME_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`,
      }),
  )
  .default({})
  .describe(`Tags each copy (and its snapshots) carries besides the pipeline's own, given in CopyImage; values may use ${NAME_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);

const nameTemplate = z
  .string({ error: 'must be a string' })
  .min(3, { error: 'must be at least 3 characters' })
  .max(128, { error: 'must be at most 128 characters once expanded; keep the template short' })
  .regex(AMI_NAME_CHARS_RE, { error: "may only contain letters, digits, spaces, ( ) [ ] . / - ' @ _ and {placeholders}" })
  .refine(
    (t) => [...t.matchAll(/\{([^}]*)\}/g)].every((m) => (NAME_PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')),
    { error: `uses an unknown placeholder; known ones are ${NAME_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` },
  );

export const sourceSchema = z
  .strictObject(
    {
      imageId: z.string({ error: 'must be an AMI ID such as "ami-0123456789abcdef0"' }).regex(AMI_RE, {
        error: 'must be an AMI ID such as "ami-0123456789abcdef0"',
      }).optional(),
      filter: z
        .strictObject(
          {
            name: z.string().min(1).max(128, { error: 'must be at most 128 characters' }).optional()
              .describe('Image name pattern; * and ? are wildcards'),
            tags: tagMap.optional().describe('Tags the image must carry (all of them)'),
          },
          { error: 'must be an object with "name" and/or "tags"' },
        )
        .refine((f) => f.name !== undefined || f.tags !== undefined, { error: 'must give "name" and/or "tags"' })
        .optional()
        .describe('Take the newest available image of the builder account that matches'),
      region: region.describe('Region of the source image in the builder account'),
      optInTag: z
        .strictObject({ key: z.string().regex(TAG_KEY_RE), value: z.string().max(256) })
        .optional()
        .describe('Only distribute when the image carries this tag (used by the EventBridge trigger)'),
    },
    { error: 'must be an object: { "imageId": "ami-...", "region": "eu-west-1" } or { "filter": {...}, "region": ... }' },
  )
  .refine((s) => (s.imageId === undefined) !== (s.filter === undefined), {
    error: 'give exactly one of "imageId" or "filter"',
  });

export const targetSchema = z.strictObject(
  {
    accountId: accountId.optional().describe('One target account; or give organizationalUnitId instead'),
    organizationalUnitId: z
      .string({ error: 'must be an OU ID such as "ou-ab12-34cd56ef" or the root ID such as "r-ab12"' })
      .refine((s) => OU_RE.test(s) || ROOT_RE.test(s), { error: 'must be an OU ID such as "ou-ab12-34cd56ef" or the root ID such as "r-ab12"' })
      .optional()
      .describe('Every ACTIVE account of this OU (or root) and of its child OUs at any depth, resolved at run time; instead of accountId'),
    excludeAccountIds: z
      .array(accountId, { error: 'must be a list of account IDs' })
      .optional()
      .describe('Accounts of the OU that are not targets (only with organizationalUnitId)'),
    regions: z
      .array(region, { error: 'must be a list of region names, e.g. ["eu-west-1"]' })
      .min(1, { error: 'must list at least one region' }),
    kmsKey: z
      .union([kmsKeyRef, z.record(regionKey, kmsKeyRef)], {
        error: 'must be a key reference for every region ("alias/NAME") or an object of region name to key ARN',
      })
      .describe("The target account's own key: one for every region, or one per region"),
    subnetIds: z
      .record(regionKey, z.string().regex(SUBNET_RE, { error: 'must be a subnet ID such as "subnet-0123456789abcdef0"' }))
      .optional()
      .describe('Subnet per region for the launch check in this account (overrides verify.subnetIds)'),
  },
  { error: 'must be an object with accountId (or organizationalUnitId), regions and kmsKey' },
);

export const VERIFY_MODES = ['auto-scaling', 'run-instances', 'none'] as const;

export const inputSchema = z
  .strictObject(
    {
      mode: z
        .enum(['distribute', 'rekey'], { error: 'must be "distribute" or "rekey"' })
        .default('distribute')
        .describe('rekey: re-encrypt each target\'s published copy (publish.parameterName) with the target\'s kmsKey, instead of distributing a source'),
      source: sourceSchema.optional(),
      targets: z
        .array(targetSchema, { error: 'must be a list of targets' })
        .min(1, { error: 'must list at least one target account' })
        .optional(),
      targetsParameter: z
        .string()
        .regex(SSM_NAME_RE, { error: 'must be an SSM parameter name such as "/ami-pipeline/targets"' })
        .optional()
        .describe('SSM parameter holding a JSON document with "targets" (and optionally the other settings); used by automatic runs'),
      targetRoleName: z
        .string()
        .regex(ROLE_NAME_RE, { error: 'must be an IAM role name (1-64 letters, digits and +=,.@_-), without a path' })
        .default('AmiPipelineTarget'),
      externalId: z
        .string()
        .regex(EXTERNAL_ID_RE, { error: 'must be 2-1224 characters of letters, digits and +=,.@:/-' })
        .optional(),
      verify: z
        .strictObject({
          mode: z.enum(VERIFY_MODES, { error: `must be one of ${VERIFY_MODES.map((m) => `"${m}"`).join(', ')}` }).default('auto-scaling'),
          instanceType: z
            .string()
            .regex(INSTANCE_TYPE_RE, { error: 'must be an instance type such as "t3.micro"' })
            .optional()
            .describe('Defaults by the image architecture: t4g.micro (arm64) or t3.micro (x86_64)'),
          subnetIds: z
            .record(regionKey, z.string().regex(SUBNET_RE, { error: 'must be a subnet ID such as "subnet-0123456789abcdef0"' }))
            .optional(),
          timeoutMinutes: z
            .number({ error: 'must be a number of minutes' })
            .int({ error: 'must be a whole number of minutes' })
            .min(5, { error: 'must be at least 5' })
            .max(60, { error: 'must be at most 60' })
            .default(15),
        })
        .prefault({}),
      copy: z
        .strictObject({
          name: nameTemplate.optional(),
          timeoutMinutes: z
            .number({ error: 'must be a number of minutes' })
            .int({ error: 'must be a whole number of minutes' })
            .min(10, { error: 'must be at least 10' })
            .max(720, { error: 'must be at most 720 (12 hours)' })
            .default(180),
          deprecateAfterDays: z
            .number({ error: 'must be a number of days, or null for no deprecation' })
            .int({ error: 'must be a whole number of days' })
            .min(1, { error: 'must be at least 1' })
            .max(3650, { error: 'must be at most 3650 (EC2 deprecates at most 10 years ahead)' })
            .nullable()
            .default(365)
            .describe('Days after the copy that EC2 deprecates it (EnableImageDeprecation), so it leaves default listings; null: never'),
          tags: copyTags,
          copySourceTags: z
            .union([z.literal(true), z.literal(false), z.array(userTagKey).max(MAX_USER_TAGS, { error: `must list at most ${MAX_USER_TAGS} keys` })], {
              error: 'must be true (all user tags of the source), false, or a list of tag keys',
            })
            .default(false)
            .describe("Tags of the source image (read in the builder account) each copy carries too: true for all its user tags, or a list of keys"),
        })
        .prefault({}),
      publish: z
        .strictObject({
          parameterName: z
            .string()
            .regex(PARAMETER_TEMPLATE_RE, { error: 'must be an SSM parameter path such as "/ami-pipeline/{sourceName}/latest" (letters, digits, _ . - / and {placeholders})' })
            .refine(
              (t) => [...t.matchAll(/\{([^}]*)\}/g)].every((m) => (PARAMETER_PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')),
              { error: `uses an unknown placeholder; known ones are ${PARAMETER_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` },
            )
            .optional()
            .describe('SSM parameter (dataType aws:ec2:image) each target account and region points at its verified copy; launch templates resolve it with resolve:ssm:'),
          launchTemplates: z
            .array(z.string().regex(LAUNCH_TEMPLATE_NAME_RE, { error: 'must be a launch template name (3-128 letters, digits and ( ) . - / _)' }))
            .max(20, { error: 'must list at most 20 launch templates' })
            .default([])
            .describe('Launch templates (by name, in every target account and region) that get a new default version with the new image'),
          protect: z
            .union([z.boolean(), z.literal('with-cooldown')], { error: 'must be true, false or "with-cooldown"' })
            .default(true)
            .describe('Deregistration protection on the published copy, moved to each newer one ("with-cooldown": it holds 24 h after it is moved)'),
        })
        .prefault({}),
      retention: z
        .strictObject({
          keep: z
            .number({ error: 'must be a number of images' })
            .int({ error: 'must be a whole number' })
            .min(1, { error: 'must be at least 1 (the new copy)' })
            .max(100, { error: 'must be at most 100' })
            .default(3),
          lineage: z
            .string()
            .regex(LINEAGE_RE, { error: 'must be 1-128 letters, digits and _ . - / :' })
            .optional()
            .describe('What makes copies one lineage; defaults to publish.parameterName. Without either, nothing is retired'),
          dryRun: z.boolean({ error: 'must be true or false' }).default(false),
          graceDays: z
            .number({ error: 'must be a number of days' })
            .int({ error: 'must be a whole number of days' })
            .min(0, { error: 'must be at least 0 (0: deregister at once)' })
            .max(365, { error: 'must be at most 365' })
            .default(7)
            .describe('Days a copy leaving the kept set stays disabled (DisableImage, reversible with `ami-pipeline restore`) before it is deregistered'),
          keepIfLaunchedWithinDays: z
            .number({ error: 'must be a number of days' })
            .int({ error: 'must be a whole number of days' })
            .min(0, { error: 'must be at least 0 (0: launches do not keep a copy)' })
            .max(3650, { error: 'must be at most 3650' })
            .default(14)
            .describe('A copy launched (after its launch check) within this many days is kept'),
        })
        .prefault({}),
      notify: z
        .strictObject({
          topicArn: z.string().regex(SNS_ARN_RE, { error: 'must be an SNS topic ARN such as "arn:aws:sns:eu-west-1:999999999999:ami-pipeline"' }).optional(),
        })
        .prefault({}),
      allowRegions: z
        .array(region, { error: 'must be a list of region names, e.g. ["xx-newregion-1"]' })
        .optional()
        .describe("Regions to accept although this release's AWS SDK does not list them yet (a region newer than the SDK); every other region name is checked against the SDK's partition data"),
      organization: z
        .strictObject({
          roleArn: z
            .string()
            .regex(ROLE_ARN_RE, { error: 'must be an IAM role ARN such as "arn:aws:iam::111111111111:role/ami-pipeline-org-reader"' })
            .optional()
            .describe('Role (templates/organization.yml) to read the organization with; without it the builder account reads it as a delegated administrator'),
        })
        .prefault({})
        .describe('How organizationalUnitId targets are resolved'),
      newAccount: z
        .strictObject({
          accountId: accountId.optional(),
          event: z.string().max(64).optional().describe('The Organizations event that announced it (CreateAccountResult, MoveAccount, AccountJoinedOrganization)'),
          joinedAt: z.iso
            .datetime({ offset: true, error: 'must be an ISO 8601 time such as "2026-11-30T10:00:00Z" (the event\'s time)' })
            .optional()
            .describe(
              "The event's time, when the event does not name the account: the run serves the accounts its organizationalUnitId entries reach that joined the organization (JoinedTimestamp) at most an hour before it or later",
            ),
        })
        .optional()
        .describe(
          'Set by the new-account rules: run only for accountId, or for the accounts that joined since joinedAt when the event does not say which account joined, waiting (bounded) for StackSet-deployed roles and keys',
        ),
      maxConcurrency: z
        .number({ error: 'must be a number' })
        .int({ error: 'must be a whole number' })
        .min(1, { error: 'must be at least 1' })
        .max(MAX_PAIRS_PER_RUN, { error: `must be at most ${MAX_PAIRS_PER_RUN}` })
        .optional()
        .describe('Most targets copying at once over the whole run; default: all of them (each target is its own account and region, so no copy quota is shared)'),
    },
    { error: 'must be a JSON object' },
  )
  .superRefine((input, ctx) => {
    if (input.mode === 'distribute' && input.source === undefined) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'is required: { "imageId": "ami-...", "region": "eu-west-1" } or { "filter": {...}, "region": ... }' });
    }
    if (input.mode === 'rekey') {
      if (input.source !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['source'], message: "must be left out with mode rekey: each target's published copy (publish.parameterName) is re-encrypted" });
      }
      const name = input.publish.parameterName;
      if (name === undefined) {
        ctx.addIssue({ code: 'custom', path: ['publish', 'parameterName'], message: 'is required with mode rekey: the parameter that points at the copy to re-encrypt in each target' });
      } else if (name.includes('{')) {
        ctx.addIssue({ code: 'custom', path: ['publish', 'parameterName'], message: `must be the parameter's name itself with mode rekey, without placeholders (e.g. "/ami-pipeline/base/latest")` });
      }
    }
    const allowed = new Set(input.allowRegions ?? []);
    const checkRegion = (name: string, path: (string | number)[]) => {
      // A malformed name has its own issue already (refinements run on whatever the schema could parse).
      if (!REGION_RE.test(name) || allowed.has(name) || sdkKnowsRegion(name)) return;
      ctx.addIssue({
        code: 'custom',
        path,
        message: `names region ${name}, which the AWS SDK's partition data does not list: check the spelling (regions look like "eu-west-1"); if it is a region newer than this release's SDK, add it to "allowRegions"`,
      });
    };
    if (input.source) checkRegion(input.source.region, ['source', 'region']);
    (input.targets ?? []).forEach((target, i) => target.regions.forEach((r, j) => checkRegion(r, ['targets', i, 'regions', j])));
    const userTags = Object.keys(input.copy.tags).length + (Array.isArray(input.copy.copySourceTags) ? input.copy.copySourceTags.length : 0);
    if (userTags > MAX_USER_TAGS) {
      ctx.addIssue({
        code: 'custom',
        path: ['copy', 'tags'],
        message: `with copy.copySourceTags names ${userTags} tags; a copy can carry at most ${MAX_USER_TAGS} besides the pipeline's ${PIPELINE_TAG_COUNT} (EC2 allows ${MAX_TAGS_PER_RESOURCE} per resource)`,
      });
    }
    if (input.targets === undefined && input.targetsParameter === undefined) {
      ctx.addIssue({ code: 'custom', path: ['targets'], message: 'is required: list the target accounts, or give "targetsParameter"' });
      return;
    }
    const seen = new Map<string, number>();
    (input.targets ?? []).forEach((target, i) => {
      const key = target.accountId ?? target.organizationalUnitId;
      if ((target.accountId === undefined) === (target.organizationalUnitId === undefined) || key === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i],
          message: 'give exactly one of "accountId" (one account) or "organizationalUnitId" (every ACTIVE account of an OU or the root, resolved at run time)',
        });
        return;
      }
      if (target.excludeAccountIds !== undefined && target.organizationalUnitId === undefined) {
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'excludeAccountIds'], message: 'only applies to an organizationalUnitId entry; remove it or target the OU' });
      }
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, target.accountId !== undefined ? 'accountId' : 'organizationalUnitId'],
          message: `repeats ${target.accountId !== undefined ? 'account' : 'OU'} ${key} of targets[${first}]; list each ${target.accountId !== undefined ? 'account' : 'OU'} once with all its regions`,
        });
      } else seen.set(key, i);
      const regions = new Set<string>();
      target.regions.forEach((r, j) => {
        if (regions.has(r)) {
          ctx.addIssue({ code: 'custom', path: ['targets', i, 'regions', j], message: `repeats region ${r}; list each region once` });
        }
        regions.add(r);
      });
      if (target.accountId !== undefined) checkKeys(target.accountId, target.regions, target.kmsKey, i, ctx);
      else checkOuKeys(target.kmsKey, i, ctx);
      for (const r of Object.keys(target.subnetIds ?? {})) {
        if (!regions.has(r)) {
          ctx.addIssue({ code: 'custom', path: ['targets', i, 'subnetIds', r], message: `names region ${r}, which is not in this target's regions` });
        }
      }
    });
    // OU entries are counted once resolved (functions/shared/organization.ts holds them to the same limit).
    const pairs = regionPairs((input.targets ?? []).filter((t) => t.accountId !== undefined)).length;
    const tooMany = pairLimitProblem(pairs);
    if (tooMany) ctx.addIssue({ code: 'custom', path: ['targets'], message: tooMany });
    const budget = historyBudget(pairs, input.copy.timeoutMinutes, input.verify.timeoutMinutes, input.maxConcurrency ?? null);
    if (budget.perTarget > MAX_HISTORY_EVENTS_PER_EXECUTION) {
      ctx.addIssue({
        code: 'custom',
        path: ['copy', 'timeoutMinutes'],
        message:
          `lets one target's execution need ${budget.perTarget} history events at worst, and this pipeline keeps every execution under ` +
          `${MAX_HISTORY_EVENTS_PER_EXECUTION} of Step Functions' 25,000; lower copy.timeoutMinutes or verify.timeoutMinutes`,
      });
    }
  });

/**
 * Why `pairs` account-region pairs are too many for one run with these settings, or undefined when they fit.
 * Validation applies it to the inline accounts, ResolveSource again once the OU entries are resolved.
 */
export function pairLimitProblem(pairs: number): string | undefined {
  if (pairs <= MAX_PAIRS_PER_RUN) return undefined;
  // No setting helps: only fewer targets per run do.
  return (
    `${pairs} account-region pairs are too many for one run (at most ${MAX_PAIRS_PER_RUN} per run, whatever the timeouts: ` +
    `the limit this pipeline is tested to, docs/fanout.md); ` +
    `split the targets over ${Math.ceil(pairs / MAX_PAIRS_PER_RUN)} or more runs of at most ${MAX_PAIRS_PER_RUN} pairs each, e.g. one input per group of accounts`
  );
}

/** An OU entry names its key for every account: an alias (each account's own key of that name), never one key's ID or ARN. */
function checkOuKeys(kmsKey: string | Record<string, string>, i: number, ctx: z.RefinementCtx): void {
  const keys = typeof kmsKey === 'string' ? [['', kmsKey] as const] : Object.entries(kmsKey);
  for (const [r, key] of keys) {
    if (ALIAS_RE.test(key)) continue;
    ctx.addIssue({
      code: 'custom',
      path: r === '' ? ['targets', i, 'kmsKey'] : ['targets', i, 'kmsKey', r],
      message: `names one key of one account, but an organizationalUnitId entry covers many accounts: give an alias such as "alias/ami-encryption" that each account's own key carries (templates/target-account.yml)`,
    });
  }
}

function checkKeys(
  account: string,
  regions: readonly string[],
  kmsKey: string | Record<string, string>,
  i: number,
  ctx: z.RefinementCtx,
): void {
  const check = (key: string, keyRegion: string | undefined, path: (string | number)[]) => {
    const arn = KMS_ARN_RE.exec(key);
    if (!arn) return;
    if (arn[3] !== account) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `belongs to account ${arn[3]}, not to the target ${account}: every account encrypts with a key of its own; give a key of account ${account}`,
      });
    }
    if (keyRegion === undefined) {
      if (regions.length > 1 || arn[2] !== regions[0]) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `is an ARN in region ${arn[2]}, but the target lists ${regions.join(', ')}: give "alias/NAME" or an object of region name to key ARN`,
        });
      }
    } else if (arn[2] !== keyRegion) {
      ctx.addIssue({ code: 'custom', path, message: `is in region ${arn[2]} but is given for ${keyRegion}; KMS keys are regional: give the key of ${keyRegion}` });
    }
  };
  if (typeof kmsKey === 'string') {
    check(kmsKey, undefined, ['targets', i, 'kmsKey']);
    if (KEY_ID_RE.test(kmsKey) && regions.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 'kmsKey'],
        message: 'is a key ID, which names one key in one region, but the target lists several regions: give "alias/NAME" or one key per region',
      });
    }
    return;
  }
  for (const r of regions) {
    if (kmsKey[r] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['targets', i, 'kmsKey', r], message: `is missing: give the key for region ${r}` });
    }
  }
  for (const [r, key] of Object.entries(kmsKey)) {
    if (!regions.includes(r)) {
      ctx.addIssue({ code: 'custom', path: ['targets', i, 'kmsKey', r], message: `names region ${r}, which is not in this target's regions` });
    } else check(key, r, ['targets', i, 'kmsKey', r]);
  }
}

export type PipelineInput = z.output<typeof inputSchema>;
export type PipelineInputRaw = z.input<typeof inputSchema>;
export type Target = z.output<typeof targetSchema>;
export type SourceSpec = z.output<typeof sourceSchema>;

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(input)' : out;
}

function describe(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: is not a known field; remove it or check its spelling (see schema/pipeline-input.schema.json)`);
  }
  if (issue.code === 'invalid_key') {
    // A record's key: zod nests the key's own issues; their messages say what is wrong with it.
    return [`${formatPath(issue.path)}: ${issue.issues.map((i) => i.message).join('; ')}`];
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}

const EXPECTED: Record<string, string> = {
  object: 'an object ({ ... })',
  record: 'an object ({ "name": value, ... })',
  array: 'a list ([ ... ])',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

/**
 * The message of an issue whose schema names none: zod's own ("Invalid input: expected object, received boolean")
 * said neither the field's type nor, for a value of the wrong type, that the value was there at all.
 */
function explain(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required but missing';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${received(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `must list at least ${issue.minimum}`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `must list at most ${issue.maximum}`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_format':
      return issue.pattern ? `must match ${issue.pattern}` : `must be a valid ${issue.format}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
}

/**
 * Keys named "__proto__": JSON.parse keeps them, but a JavaScript object built from them drops them (zod's records
 * do), so `{"tags": {"__proto__": "x", "Team": "web"}}` would validate as a broader filter than written. Refused.
 */
function protoKeys(raw: unknown): string[] {
  const found: string[] = [];
  const stack: { value: unknown; path: PropertyKey[] }[] = [{ value: raw, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: PropertyKey[] };
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') {
        found.push(`${formatPath([...path, key])}: a key named "__proto__" is refused (JavaScript objects drop it, so it would be ignored silently); remove it`);
      } else stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return found.reverse();
}

/** Validate raw input; throws InvalidInputError listing every problem, each with its field and fix. */
export function parseInput(raw: unknown): PipelineInput {
  const refused = protoKeys(raw);
  const result = inputSchema.safeParse(raw, { error: explain });
  if (!result.success || refused.length > 0) {
    throw new InvalidInputError([...refused, ...(result.error?.issues.flatMap(describe) ?? [])]);
  }
  const tooLarge = payloadProblems(raw, result.data);
  if (tooLarge.length > 0) throw new InvalidInputError(tooLarge);
  return result.data;
}

const n = (x: number) => x.toLocaleString('en-US');

/** What a run of this input cannot carry within AWS's limits (functions/shared/payload.ts), each with the fix. */
export function payloadProblems(raw: unknown, input: PipelineInput, organization: OuExpansion[] = []): string[] {
  const inputBytes = Buffer.byteLength(JSON.stringify(raw), 'utf8');
  if (inputBytes > STATE_PAYLOAD_BYTES) {
    return [
      `(input): is ${n(inputBytes)} bytes as JSON, over Step Functions' ${n(STATE_PAYLOAD_BYTES)}-byte limit for an execution input; ` +
        'split the targets over several runs, or shorten the key references (an alias instead of one key ARN per region)',
    ];
  }
  const over = payloadsOverLimit(input, undefined, organization);
  if (over.length === 0) return [];
  const pairs = regionPairs(input.targets ?? []).length;
  const fit = mostPairsThatFit(input, organization);
  const sizes = over.map((p) => `${p.payload} would be ${n(p.size)} ${p.unit} (limit ${n(p.limit)}: ${p.limitName})`).join('; ');
  return [
    `targets: ${n(pairs)} account-region pairs do not fit AWS's payload limits at worst: ${sizes}; ` +
      (fit > 0
        ? `split the targets over runs of at most ${n(fit)} pairs each with these settings`
        : organization.length > 0
          ? "put fewer organizationalUnitId entries in one run (what each expanded to rides in the run's state)"
          : 'shorten the settings (publish.launchTemplates, names)'),
  ];
}

export { keyFor } from './plan';

/** The input contract as JSON Schema (draft 2020-12), published in schema/ for editors and other tools. */
export function inputJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://github.com/encrypted-ami-pipeline/encrypted-ami-pipeline/schema/pipeline-input.schema.json',
    title: 'encrypted-ami-pipeline execution input',
    ...z.toJSONSchema(inputSchema, { io: 'input', unrepresentable: 'any' }),
  };
}
