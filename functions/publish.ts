/**
 * States: PublishImage. Serverless function: publish.
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
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeregistrationProtectionCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  type Image,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import { clientFactory, type ClientFactory } from './shared/client-factory';
import { aws, type AwsErrorFactory, PARAMETER_ABSENT, PublishFailedError } from './shared/errors';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { logger } from './shared/logger';
import { describeImage, lineageFilters, ownImages, snapshotIdsOf } from './shared/images';
import { copyRefSchema, parsePayload, targetItemSchema, type TargetItem } from './shared/plan';
import { digest, TAGS, tagList } from './shared/tags';
import { targetClients, where } from './shared/target';
import type { PublishResult } from './shared/manifest-schema';

export const publishEventSchema = z.object({ item: targetItemSchema, copy: copyRefSchema });
export type PublishEvent = z.infer<typeof publishEventSchema>;

export type LaunchTemplateResult = PublishResult['launchTemplates'][number];

export type { PublishResult };

export interface PublishDeps {
  clients: ClientFactory;
  now: () => Date;
}
export const defaultDeps: PublishDeps = { clients: clientFactory({ ec2: EC2Client, ssm: SSMClient }), now: () => new Date() };

const MAX_PARAMETER_NAME = 1011;
const LAUNCH_TEMPLATE_PERMISSIONS =
  'The target role needs ec2:DescribeLaunchTemplateVersions, ec2:CreateLaunchTemplateVersion and ec2:ModifyLaunchTemplate on the launch templates of publish.launchTemplates.';

/** The SSM parameter name of a publish.parameterName template: placeholders expanded, characters SSM refuses replaced. */
export function parameterNameFor(template: string, source: { name: string; imageId: string }): string {
  const values: Record<string, string> = { sourceName: source.name, sourceImageId: source.imageId };
  const name = template.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? '').replace(/[^a-zA-Z0-9_.\-/]/g, '-');
  return name.slice(0, MAX_PARAMETER_NAME);
}

async function describeCopy(ec2: EC2Client, item: TargetItem, imageId: string): Promise<Image> {
  const image = await describeImage(ec2, imageId, `Describing copy ${imageId} in ${where(item)}`, { fix: 'The target role needs ec2:DescribeImages.' });
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
  const current = (await aws(`Reading parameter ${name} in ${where(item)}`, () => ssm.send(new GetParameterCommand({ Name: name })), { fix, absentOn: PARAMETER_ABSENT }))
    ?.Parameter;
  if (current?.Value === imageId) return current.Version ?? null;
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
  const missing: AwsErrorFactory = (detail, options) =>
    new PublishFailedError(
      `Launch template ${templateName} does not exist in account ${item.target.accountId}, region ${item.target.region}: ` +
        `${detail.code}: ${detail.message}${/[.!?]$/.test(detail.message) ? '' : '.'} ` +
        'Create it in that account and region (each one needs its own), or remove it from publish.launchTemplates.',
      options,
    );
  return aws(`${action} of launch template ${templateName} in ${where(item)}`, call, {
    fix,
    errors: { 'InvalidLaunchTemplateName.NotFoundException': missing, 'InvalidLaunchTemplateId.NotFound': missing },
  });
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
  const snapshotIds = snapshotIdsOf(image);
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
    const older = await ownImages(ec2, lineageFilters(lineage, { Name: 'tag-key', Values: [TAGS.protectedBy] }), `Listing protected copies of lineage ${lineage} in ${where(item)}`, {
      includeDisabled: true,
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
