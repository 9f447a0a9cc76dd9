/**
 * PublishImage: after the launch check passed, inside the target account and region (through the target role),
 * makes the verified copy the one to use there: the SSM parameter of publish.parameterName (DataType aws:ec2:image)
 * points at it, each of publish.launchTemplates gets a new default version with it, and the copy and its snapshots
 * are tagged with the check they passed, their lineage and when they were published. With publish.protect the copy
 * gets deregistration protection (EnableImageDeregistrationProtection, WithCooldown for "with-cooldown"), and the
 * protection this pipeline put on older copies of the lineage is disabled: it moves to the newest published copy
 * (a cooldown keeps an old one protected for 24 hours more; ApplyRetention keeps it meanwhile and says so).
 * Idempotent: a parameter or template already on the copy is left as it is.
 * Takes the item and the copy; returns the parameter name and version, the lineage, each template's version and
 * where protection now is.
 * Throws PublishFailedError, AccessDeniedError, AwsRequestFailedError (terminal); throttling and 5xx (retryable).
 */
import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImagesCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeregistrationProtectionCommand,
  paginateDescribeImages,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  type Image,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, awsCode, awsErrorDetail, PublishFailedError, toPipelineError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { digest, MANAGED_BY, TAGS, tagList } from './shared/tags';
import { targetClients } from './shared/target';

export const publishEventSchema = z.object({
  item: targetItemSchema,
  copy: z.object({ imageId: z.string(), kmsKeyArn: z.string() }),
});
export type PublishEvent = z.infer<typeof publishEventSchema>;

export interface LaunchTemplateResult {
  name: string;
  version: number;
  changed: boolean;
}

export interface PublishResult {
  parameterName: string | null;
  parameterVersion: number | null;
  lineage: string | null;
  launchTemplates: LaunchTemplateResult[];
  /** Deregistration protection: the copy it is on now (null: publish.protect is false), and older copies it left. */
  protection: { imageId: string | null; withCooldown: boolean; movedFrom: { imageId: string; state: string }[] };
}

export interface PublishDeps {
  clients: ClientFactory;
  now: () => Date;
}
export const defaultDeps: PublishDeps = { clients: clientFactory({ ec2: EC2Client, ssm: SSMClient }), now: () => new Date() };

const MAX_PARAMETER_NAME = 1011;
const LAUNCH_TEMPLATE_NOT_FOUND = new Set(['InvalidLaunchTemplateName.NotFoundException', 'InvalidLaunchTemplateId.NotFound']);
const LAUNCH_TEMPLATE_PERMISSIONS =
  'The target role needs ec2:DescribeLaunchTemplateVersions, ec2:CreateLaunchTemplateVersion and ec2:ModifyLaunchTemplate on the launch templates of publish.launchTemplates.';

const where = (item: TargetItem) => `${item.target.accountId}/${item.target.region}`;

/** The SSM parameter name of a publish.parameterName template: placeholders expanded, characters SSM refuses replaced. */
export function parameterNameFor(template: string, source: { name: string; imageId: string }): string {
  const values: Record<string, string> = { sourceName: source.name, sourceImageId: source.imageId };
  const name = template.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? '').replace(/[^a-zA-Z0-9_.\-/]/g, '-');
  return name.slice(0, MAX_PARAMETER_NAME);
}

async function describeCopy(ec2: EC2Client, item: TargetItem, imageId: string): Promise<Image> {
  let image: Image | undefined;
  try {
    image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  } catch (error) {
    if (!awsCode(error).startsWith('InvalidAMIID')) {
      throw toPipelineError(error, `Describing copy ${imageId} in ${where(item)}`, 'The target role needs ec2:DescribeImages.');
    }
  }
  if (!image) {
    throw new PublishFailedError(
      `Copy ${imageId} no longer exists in account ${item.target.accountId}, region ${item.target.region}: it was deregistered after its launch check. Run the pipeline again to make a new copy.`,
    );
  }
  return image;
}

/** Point the parameter at the copy unless it already does; returns the parameter version that holds it. */
async function publishParameter(ssm: SSMClient, item: TargetItem, name: string, imageId: string): Promise<number | null> {
  const fix =
    `The target role needs ssm:GetParameter and ssm:PutParameter on parameter ${name}; an existing parameter of that name must be of type String, ` +
    'and publish.parameterName must expand to a valid name (at most 15 levels, not beginning with "aws" or "ssm").';
  let current: { value: string | null; version: number | null } = { value: null, version: null };
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: name }));
    current = { value: out.Parameter?.Value ?? null, version: out.Parameter?.Version ?? null };
  } catch (error) {
    if (awsCode(error) !== 'ParameterNotFound') throw toPipelineError(error, `Reading parameter ${name} in ${where(item)}`, fix);
  }
  if (current.value === imageId) return current.version;
  const out = await aws(
    `Writing parameter ${name} in ${where(item)}`,
    () =>
      // With DataType aws:ec2:image, SSM checks asynchronously that the image exists (with the caller's ec2:DescribeImages).
      ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: imageId,
          Type: 'String',
          DataType: 'aws:ec2:image',
          Overwrite: true,
          Description: `encrypted-ami-pipeline: the verified, encrypted copy of ${item.source.name}`,
        }),
      ),
    fix,
  );
  return out.Version ?? null;
}

/** Run a launch template call; a template that does not exist is the user's to create or unlist. */
async function onLaunchTemplate<T>(item: TargetItem, templateName: string, action: string, call: () => Promise<T>, fix: string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const detail = awsErrorDetail(error);
    if (LAUNCH_TEMPLATE_NOT_FOUND.has(detail.code)) {
      throw new PublishFailedError(
        `Launch template ${templateName} does not exist in account ${item.target.accountId}, region ${item.target.region}: ` +
          `${detail.code}: ${detail.message}${/[.!?]$/.test(detail.message) ? '' : '.'} ` +
          'Create it in that account and region (each one needs its own), or remove it from publish.launchTemplates.',
        { cause: error, aws: detail },
      );
    }
    throw toPipelineError(error, `${action} of launch template ${templateName} in ${where(item)}`, fix);
  }
}

async function publishLaunchTemplate(ec2: EC2Client, item: TargetItem, name: string, imageId: string): Promise<LaunchTemplateResult> {
  const described = await onLaunchTemplate(
    item,
    name,
    'Describing the default version',
    () => ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: ['$Default'] })),
    LAUNCH_TEMPLATE_PERMISSIONS,
  );
  const current = described.LaunchTemplateVersions?.[0];
  if (current?.VersionNumber === undefined) {
    throw new PublishFailedError(`Launch template ${name} in ${where(item)} reported no default version. Check the template in the EC2 console.`);
  }
  const currentImage = current.LaunchTemplateData?.ImageId;
  if (currentImage === imageId) return { name, version: current.VersionNumber, changed: false };
  if (currentImage?.startsWith('resolve:ssm:')) {
    // The template resolves its image from a parameter at launch; a literal image ID would cut it loose from that parameter.
    logger.info('Launch template follows a parameter', { launchTemplateName: name, imageId: currentImage });
    return { name, version: current.VersionNumber, changed: false };
  }
  const created = await onLaunchTemplate(
    item,
    name,
    'Creating a version',
    () =>
      ec2.send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateName: name,
          SourceVersion: String(current.VersionNumber),
          VersionDescription: `encrypted-ami-pipeline: ${imageId}`,
          LaunchTemplateData: { ImageId: imageId },
          // A Lambda retry after a lost response gets the same version back instead of another one.
          ClientToken: digest(name, String(current.VersionNumber), imageId).slice(0, 64),
        }),
      ),
    `The target role needs ec2:CreateLaunchTemplateVersion on launch template ${name}.`,
  );
  const version = created.LaunchTemplateVersion?.VersionNumber;
  if (version === undefined) throw new PublishFailedError(`CreateLaunchTemplateVersion on ${name} in ${where(item)} returned no version number`);
  if (created.Warning?.Errors?.length) {
    logger.warn('Launch template version has warnings', {
      launchTemplateName: name,
      version,
      warnings: created.Warning.Errors.map((e) => `${e.Code ?? ''}: ${e.Message ?? ''}`),
    });
  }
  await onLaunchTemplate(
    item,
    name,
    'Setting the default version',
    () => ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateName: name, DefaultVersion: String(version) })),
    `The target role needs ec2:ModifyLaunchTemplate on launch template ${name}.`,
  );
  return { name, version, changed: true };
}

export async function publishImage(event: PublishEvent, deps: PublishDeps = defaultDeps): Promise<PublishResult> {
  const { item } = event;
  const { imageId } = event.copy;
  const clients = targetClients(item, deps);
  const ec2 = clients.ec2(item.target.region);
  const { parameterName: template, launchTemplates: templateNames } = item.settings.publish;
  const parameterName = template === null ? null : parameterNameFor(template, item.source);
  const lineage = item.settings.retention.lineage ?? parameterName ?? null;

  const image = await describeCopy(ec2, item, imageId);
  const parameterVersion = parameterName === null ? null : await publishParameter(clients.ssm(item.target.region), item, parameterName, imageId);
  const launchTemplates: LaunchTemplateResult[] = [];
  for (const name of templateNames) launchTemplates.push(await publishLaunchTemplate(ec2, item, name, imageId));

  // Tagged last: the lineage tag is what retention counts, so a copy only joins its lineage once it is published.
  const snapshotIds = (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
  // published-at: launches of the copy before it were the launch check's (retention's LastLaunchedTime check skips them).
  const tags: Record<string, string> = { [TAGS.verified]: item.settings.verify.mode, [TAGS.publishedAt]: deps.now().toISOString() };
  if (lineage !== null) tags[TAGS.lineage] = lineage;
  await aws(
    `Tagging copy ${imageId} in ${where(item)}`,
    () => ec2.send(new CreateTagsCommand({ Resources: [imageId, ...snapshotIds], Tags: tagList(tags) })),
    'The target role needs ec2:CreateTags on its images and snapshots.',
  );

  const protection = await moveProtection(ec2, item, imageId, lineage);
  logger.info('Image published', { imageId, parameterName, parameterVersion, lineage, launchTemplates, protection });
  return { parameterName, parameterVersion, lineage, launchTemplates, protection };
}

const PROTECTION_FIX =
  'The target role needs ec2:EnableImageDeregistrationProtection, ec2:DisableImageDeregistrationProtection and ec2:DeleteTags on its images (templates/target-account.yml), or set publish.protect to false.';

/** Protect the new copy (publish.protect) and lift the protection this pipeline put on the lineage's older copies. */
async function moveProtection(ec2: EC2Client, item: TargetItem, imageId: string, lineage: string | null): Promise<PublishResult['protection']> {
  const setting = item.settings.publish.protect;
  const withCooldown = setting === 'with-cooldown';
  if (setting !== false) {
    await aws(
      `Protecting copy ${imageId} from deregistration in ${where(item)}`,
      async () => {
        await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAGS.protectedBy, Value: withCooldown ? 'with-cooldown' : 'true' }] }));
        await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId, WithCooldown: withCooldown }));
      },
      PROTECTION_FIX,
    );
  }
  const movedFrom: PublishResult['protection']['movedFrom'] = [];
  if (lineage !== null) {
    const older: Image[] = [];
    const pages = paginateDescribeImages(
      { client: ec2 },
      {
        Owners: ['self'],
        IncludeDisabled: true,
        Filters: [
          { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY] },
          { Name: `tag:${TAGS.lineage}`, Values: [lineage] },
          { Name: 'tag-key', Values: [TAGS.protectedBy] },
        ],
      },
    );
    await aws(`Listing protected copies of lineage ${lineage} in ${where(item)}`, async () => {
      for await (const page of pages) older.push(...(page.Images ?? []));
    });
    for (const image of older) {
      const id = image.ImageId;
      if (!id || id === imageId || !image.Tags?.some((t) => t.Key === TAGS.protectedBy)) continue;
      const out = await aws(
        `Moving deregistration protection off ${id} in ${where(item)}`,
        async () => {
          const result = await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: id }));
          await ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: TAGS.protectedBy }] }));
          return result;
        },
        PROTECTION_FIX,
      );
      movedFrom.push({ imageId: id, state: out.Return ?? 'disabled' });
    }
  }
  return { imageId: setting === false ? null : imageId, withCooldown, movedFrom };
}

export const makeHandler = (deps: PublishDeps = defaultDeps) =>
  lambdaHandler('PublishImage', itemLogContext, (event) => publishImage(parsePayload(publishEventSchema, event, 'event'), deps));

export const handler = makeHandler();
