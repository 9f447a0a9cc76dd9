/**
 * Resolving a run: the input validated (with the automatic runs' targets document from SSM merged under it), the
 * targets expanded to (account, region) pairs, the source image in the builder account (by ID or newest match of a
 * filter), its snapshots and their keys, and a refusal of what cannot work. The ResolveSource handler
 * (functions/snapshot.ts) and the CLI's doctor and cleanup run it.
 * Throws InvalidInputError, SourceImageNotFoundError, SourceImageNotAvailableError, SourceNotEbsBackedError,
 * SourceNotShareableError (AWS managed key, or not owned by the builder account), SourceKeyNotSharedError.
 */
import { DescribeImageAttributeCommand, DescribeSnapshotAttributeCommand, DescribeSnapshotsCommand, type Filter, type Image } from '@aws-sdk/client-ec2';
import { DescribeKeyCommand, GetKeyPolicyCommand } from '@aws-sdk/client-kms';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { sessionNameFor, type ClientFactory } from './client-factory';
import {
  aws,
  InvalidInputError,
  SourceImageNotAvailableError,
  SourceImageNotFoundError,
  SourceKeyNotSharedError,
  SourceNotEbsBackedError,
  SourceNotShareableError,
} from './errors';
import { describeImage, ownImages, resolvedSourceOf, snapshotIdsOf } from './images';
import { MAX_TAGS_PER_RESOURCE, MAX_USER_TAGS, pairLimitProblem, parseInput, payloadProblems, type PipelineInput, type SourceSpec } from './input';
import { resolveTargets, type ResolvedTarget, type Resolution } from './organization';
import { missingActions, SOURCE_KEY_ACTIONS, sourceKeyPolicyStatements } from './key-policy';
import { logger } from './logger';
import { settingsOf, targetPairs, type ResolvedSource, type RunPlan, type TargetPair } from './plan';
import { deploymentIssues, type DeploymentLimits } from './deployment';
import { runFiles, type RunStore } from './run-store';

export interface ResolveSourceEvent {
  input: unknown;
  executionName: string;
}

export interface SnapshotDeps {
  clients: ClientFactory;
  /** Region of the pipeline itself, where the targets document lives. */
  pipelineRegion: string;
  builderAccountId: () => Promise<string>;
  /** What the deployment allows (role names, publish prefix); from the function's environment by default. */
  deployment?: DeploymentLimits;
  /** The runs bucket (RUNS_BUCKET) and the S3 files in it: ResolveSource writes the targets the Distributed Map reads. */
  runsBucket: () => string;
  store: RunStore;
}

/**
 * The input, validated, with the automatic runs' targets document merged under it (inline fields win), and
 * checked against what the deployment allows.
 */
export async function loadInput(raw: unknown, deps: Pick<SnapshotDeps, 'clients' | 'pipelineRegion' | 'deployment'>): Promise<PipelineInput> {
  const input = await mergeTargetsDocument(raw, deps);
  const issues = deploymentIssues(input, deps.deployment ?? { targetRoleNames: [], publishParameterPrefix: '' });
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input;
}

async function mergeTargetsDocument(raw: unknown, deps: Pick<SnapshotDeps, 'clients' | 'pipelineRegion'>): Promise<PipelineInput> {
  const first = parseInput(raw);
  if (first.targets !== undefined || first.targetsParameter === undefined) return first;
  const name = first.targetsParameter;
  const value = await aws(
    `Reading targets document ${name}`,
    async () => {
      const out = await deps.clients.builder().ssm(deps.pipelineRegion).send(new GetParameterCommand({ Name: name }));
      return out.Parameter?.Value ?? '';
    },
    {
      fix: `Create the parameter ${name} in ${deps.pipelineRegion} holding {"targets": [...]}, or fix "targetsParameter"`,
      errors: {
        ParameterNotFound: () =>
          new InvalidInputError([`targetsParameter: parameter ${name} does not exist in ${deps.pipelineRegion}; create it with {"targets": [...]}`]),
      },
    },
  );
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new InvalidInputError([`targetsParameter: parameter ${name} is not JSON; it must hold {"targets": [...]} and optionally the other settings`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidInputError([`targetsParameter: parameter ${name} must hold a JSON object such as {"targets": [...]}`]);
  }
  const inline = { ...(raw as Record<string, unknown>) };
  let merged: PipelineInput;
  try {
    merged = parseInput({ ...(doc as Record<string, unknown>), ...inline });
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    throw new InvalidInputError(error.issues.map((issue) => `${issue} (the input merged with parameter ${name})`));
  }
  if (merged.targets === undefined) {
    throw new InvalidInputError([`targetsParameter: parameter ${name} has no "targets"`]);
  }
  return merged;
}

async function findImage(source: SourceSpec, deps: SnapshotDeps): Promise<Image> {
  const ec2 = deps.clients.builder().ec2(source.region);
  const { imageId, filter, region } = source;
  if (imageId) {
    const image = await describeImage(ec2, imageId, `Describing source image ${imageId} in ${region}`);
    if (image) return image;
    throw new SourceImageNotFoundError(
      `Source image ${imageId} was not found in ${region} of the builder account; check "source.imageId" and "source.region" (AMIs are regional).`,
    );
  }
  const filters: Filter[] = [{ Name: 'state', Values: ['available'] }];
  if (filter?.name) filters.push({ Name: 'name', Values: [filter.name] });
  for (const [k, v] of Object.entries(filter?.tags ?? {})) filters.push({ Name: `tag:${k}`, Values: [v] });
  const [newest] = await ownImages(ec2, filters, `Looking for the source image in ${region}`);
  if (!newest) {
    throw new SourceImageNotFoundError(
      `No available image of the builder account in ${region} matches source.filter ${JSON.stringify(filter)}; check the name pattern and tags.`,
    );
  }
  return newest;
}

async function checkSnapshots(image: Image, region: string, shareAccountIds: string[], deps: SnapshotDeps): Promise<string[]> {
  const ec2 = deps.clients.builder().ec2(region);
  const kms = deps.clients.builder().kms(region);
  const snapshotIds = snapshotIdsOf(image);
  if (snapshotIds.length === 0) return [];
  const out = await aws(`Describing the snapshots of ${image.ImageId}`, () =>
    ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })),
  );
  const keyIds = new Set((out.Snapshots ?? []).flatMap((s) => (s.Encrypted && s.KmsKeyId ? [s.KmsKeyId] : [])));
  for (const keyId of keyIds) {
    const meta = await aws(`Describing source key ${keyId}`, () => kms.send(new DescribeKeyCommand({ KeyId: keyId })));
    if (meta.KeyMetadata?.KeyManager === 'AWS') {
      throw new SourceNotShareableError(
        `The snapshots of ${image.ImageId} are encrypted with the AWS managed key (${keyId}); snapshots encrypted with the AWS managed key can't be shared ` +
          '(AWS: "InvalidParameter: Snapshots encrypted with the AWS Managed CMK can\'t be shared"). Rebuild the image unencrypted or with a customer managed key ' +
          '(in Packer, set kms_key_id, or turn off EBS encryption by default in the builder account), then run again.',
      );
    }
    if (shareAccountIds.length === 0) continue;
    const policy = await aws(`Reading the policy of source key ${keyId}`, () =>
      kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' })),
    );
    const lacking = shareAccountIds.filter((a) => missingActions(policy.Policy ?? '{}', a, SOURCE_KEY_ACTIONS).length > 0);
    if (lacking.length > 0) {
      const statements = sourceKeyPolicyStatements(lacking, /^arn:([^:]+):/.exec(keyId)?.[1] ?? 'aws');
      throw new SourceKeyNotSharedError(
        `The snapshots of ${image.ImageId} are encrypted with ${keyId}, whose key policy does not let account(s) ${lacking.join(', ')} use it; ` +
          `EBS copies them only with ${SOURCE_KEY_ACTIONS.join(', ')} on that key. Add these statements to the key policy of ${keyId}: ` +
          `${JSON.stringify(statements)} (the targets' role also needs them in IAM: templates/target-account.yml, SourceKeyArns), ` +
          'or build the source image unencrypted (the copies are encrypted with each target\'s own key anyway).',
      );
    }
  }
  return snapshotIds;
}

async function preexistingShares(
  imageId: string,
  snapshotIds: string[],
  shareAccountIds: string[],
  region: string,
  deps: SnapshotDeps,
): Promise<ResolvedSource['preexistingShares']> {
  const ec2 = deps.clients.builder().ec2(region);
  const wanted = new Set(shareAccountIds);
  const attr = await aws(`Reading the launch permissions of ${imageId}`, () =>
    ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' })),
  );
  const launchPermission = (attr.LaunchPermissions ?? []).flatMap((p) => (p.UserId && wanted.has(p.UserId) ? [p.UserId] : []));
  const createVolumePermission: Record<string, string[]> = {};
  for (const snapshotId of snapshotIds) {
    const s = await aws(`Reading the volume permissions of ${snapshotId}`, () =>
      ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' })),
    );
    createVolumePermission[snapshotId] = (s.CreateVolumePermissions ?? []).flatMap((p) =>
      p.UserId && wanted.has(p.UserId) ? [p.UserId] : [],
    );
  }
  return { launchPermission, createVolumePermission };
}

/**
 * The source's user tags copy.copySourceTags asks for (never `aws:` tags, nor the pipeline's own); more than the
 * room a copy has left is refused before anything is shared or copied.
 */
export function sourceTagsFor(image: { ImageId?: string; Tags?: { Key?: string; Value?: string }[] }, input: PipelineInput): Record<string, string> {
  const wanted = input.copy.copySourceTags;
  if (wanted === false) return {};
  const user = (image.Tags ?? []).filter(
    (t): t is { Key: string; Value: string } => typeof t.Key === 'string' && !/^(aws:|ami-pipeline:)/i.test(t.Key) && t.Key !== 'Name',
  );
  const chosen = wanted === true ? user : user.filter((t) => wanted.includes(t.Key));
  const tags = Object.fromEntries(chosen.map((t) => [t.Key, t.Value ?? '']));
  const total = Object.keys({ ...tags, ...input.copy.tags }).length;
  if (total > MAX_USER_TAGS) {
    throw new InvalidInputError([
      `copy.copySourceTags: source image ${image.ImageId ?? ''} carries ${Object.keys(tags).length} user tags, which with copy.tags make ${total}; ` +
        `a copy can carry at most ${MAX_USER_TAGS} besides the pipeline's own (EC2 allows ${MAX_TAGS_PER_RESOURCE} per resource): list the keys to copy instead of true`,
    ]);
  }
  return tags;
}

/**
 * How long before a join event's time an account's JoinedTimestamp may lie and still count as an account the event
 * announced. The event's `time` is when the join was recorded, and a forwarded or redelivered event keeps it; the
 * hour absorbs the difference between the two services' clocks and processing, and serving another account that
 * joined in that hour is harmless (it is new too, and every step is idempotent).
 */
export const JOIN_WINDOW_MS = 60 * 60 * 1000;

const joinedSince = (joinedAt: string) => new Date(Date.parse(joinedAt) - JOIN_WINDOW_MS);

/**
 * Which resolved targets a new-account run serves: the named account (CreateAccountResult, MoveAccount); else, for
 * an event that names none (AccountJoinedOrganization), the accounts an OU entry reaches that joined since
 * `joinedAt` less JOIN_WINDOW_MS (an explicit accountId entry names an account someone already knew of: the nightly
 * run serves it); else every target.
 */
export function newAccountFilter(input: PipelineInput, resolution: Resolution): (target: ResolvedTarget) => boolean {
  const only = input.newAccount?.accountId;
  if (only !== undefined) return (t) => t.accountId === only;
  const joinedAt = input.newAccount?.joinedAt;
  if (joinedAt === undefined) return () => true;
  const since = joinedSince(joinedAt).getTime();
  return (t) => {
    const joined = resolution.joinedAt[t.accountId];
    return t.organizationalUnitId !== null && joined !== undefined && Date.parse(joined) >= since;
  };
}

export async function resolveSource(event: ResolveSourceEvent, deps: SnapshotDeps): Promise<RunPlan> {
  const input = await loadInput(event.input, deps);
  const resolution = await resolveTargets(input, { clients: deps.clients, pipelineRegion: deps.pipelineRegion, sessionName: sessionNameFor(event.executionName) });
  const only = input.newAccount?.accountId;
  const served = resolution.targets.filter(newAccountFilter(input, resolution));
  const targets = targetPairs(input, served);
  const resolvedFrom = `targets (resolved from ${resolution.organization.map((o) => o.organizationalUnitId).join(', ')})`;
  const tooMany = pairLimitProblem(targets.length);
  if (tooMany) throw new InvalidInputError([`${resolvedFrom}: ${tooMany}`]);
  if (resolution.organization.length > 0) {
    // The resolved accounts, and what the OU entries expanded to (it rides in the run's state), held to the payload
    // model validation applies to inline targets (functions/shared/payload.ts).
    const entries = served.map(({ organizationalUnitId: _ou, ...t }) => t);
    const resolved = { ...input, targets: entries };
    const tooLarge = payloadProblems({ ...(event.input as Record<string, unknown>), targets: entries }, resolved, resolution.organization);
    if (tooLarge.length > 0) throw new InvalidInputError(tooLarge.map((problem) => `${resolvedFrom}: ${problem}`));
  }
  const plan: RunPlan = {
    executionName: event.executionName,
    skipped: false,
    skipReason: null,
    source: null,
    shareAccountIds: [],
    targetCount: targets.length,
    maxConcurrency: input.maxConcurrency ?? 0,
    files: runFiles(deps.runsBucket(), event.executionName),
    settings: settingsOf(input),
    organization: resolution.organization,
    notify: { topicArn: input.notify.topicArn ?? null },
  };
  if (resolution.organization.length > 0) logger.info('Organization targets resolved', { organization: resolution.organization });
  if (targets.length === 0) {
    const joinedAt = input.newAccount?.joinedAt;
    const why = only !== undefined
      ? `account ${only} is not a target: no accountId entry names it and no organizationalUnitId entry reaches it as an ACTIVE, not excluded account`
      : joinedAt !== undefined
        ? `no ACTIVE, not excluded account that the organizationalUnitId entries reach joined the organization since ${joinedSince(joinedAt).toISOString()} (an hour before the event at ${joinedAt})`
        : 'the organizationalUnitId entries hold no ACTIVE account that is not excluded';
    return { ...plan, skipped: true, skipReason: why };
  }
  // A rekey has no source of its own: each target re-encrypts its published copy (ResolveCurrentCopy).
  if (input.mode === 'rekey') return withTargets(plan, targets, deps);
  const spec = input.source;
  if (!spec) throw new InvalidInputError(['source: is required']);

  const image = await findImage(spec, deps);
  const imageId = image.ImageId ?? '';
  const builderAccountId = await deps.builderAccountId();
  const { optInTag } = spec;
  if (optInTag && !(image.Tags ?? []).some((t) => t.Key === optInTag.key && t.Value === optInTag.value)) {
    logger.info('Source not opted in', { imageId, tagKey: optInTag.key });
    return { ...plan, skipped: true, skipReason: `${imageId} does not carry the tag ${optInTag.key}=${optInTag.value}` };
  }
  if (image.State !== 'available') {
    throw new SourceImageNotAvailableError(
      `Source image ${imageId} is ${image.State ?? 'in an unknown state'}` +
        (image.StateReason?.Message ? ` (${image.StateReason.Message})` : '') +
        (image.State === 'pending' ? '; wait until it is available, then run again.' : '; build a new image and give its ID.'),
    );
  }
  if (image.RootDeviceType !== 'ebs') {
    throw new SourceNotEbsBackedError(
      `Source image ${imageId} is ${image.RootDeviceType ?? 'not'}-backed; only EBS-backed images can be copied with encryption. Build an EBS-backed image.`,
    );
  }
  if (image.OwnerId && image.OwnerId !== builderAccountId) {
    throw new SourceNotShareableError(
      `Source image ${imageId} belongs to account ${image.OwnerId}, not to the builder account ${builderAccountId}; only its owner can share it. ` +
        'Copy it into the builder account first and give the copy.',
    );
  }
  const shareAccountIds = [...new Set(targets.map((t) => t.accountId))].filter((a) => a !== builderAccountId);
  const snapshotIds = await checkSnapshots(image, spec.region, shareAccountIds, deps);
  const source = resolvedSourceOf(
    image,
    { region: spec.region, accountId: builderAccountId },
    { snapshotIds, tags: sourceTagsFor(image, input), preexistingShares: await preexistingShares(imageId, snapshotIds, shareAccountIds, spec.region, deps) },
  );
  logger.info('Source resolved', { imageId, snapshots: snapshotIds.length, targets: targets.length });
  return withTargets({ ...plan, source, shareAccountIds }, targets, deps);
}

/** Write the targets where the Distributed Map reads them (the same file again on a retry). */
async function withTargets(plan: RunPlan, targets: TargetPair[], deps: SnapshotDeps): Promise<RunPlan> {
  await deps.store.putJson(plan.files.bucket, plan.files.targetsKey, targets);
  return plan;
}

