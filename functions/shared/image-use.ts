/**
 * What keeps a copy from being retired, asked of EC2 inside the target account and region: the references EC2 knows
 * (DescribeImageReferences: instances, launch templates, SSM parameters, Image Builder recipes), the default version
 * of every launch template (deeper than the 10 newest versions DescribeImageReferences looks at), the SSM parameter
 * the pipeline publishes, deregistration protection and the image's LastLaunchedTime. Each reason names its check.
 */
import { DescribeLaunchTemplateVersionsCommand, EC2Client, type Image, paginateDescribeImageReferences, paginateDescribeLaunchTemplates } from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { aws, PARAMETER_ABSENT } from './errors';
import { tagOf } from './images';
import { TAGS } from './tags';
import type { KeepCheck } from './manifest-schema';

export type { KeepCheck };

export interface KeepReason {
  check: KeepCheck;
  reason: string;
}

/** EC2 takes 1-10 image IDs per DescribeImageReferences call (API reference). */
export const REFERENCES_PER_CALL = 10;
/** Instance states that keep an image: a terminated or shutting-down instance no longer needs it. */
const LIVE_INSTANCE_STATES = ['pending', 'running', 'stopping', 'stopped'];
const READ_FIX =
  'The target role needs ec2:DescribeImageReferences, ec2:DescribeLaunchTemplates, ec2:DescribeLaunchTemplateVersions and ssm:GetParameter (templates/target-account.yml).';


/** DeregistrationProtection: anything but "disabled" (enabled, enabled-with-cooldown, disabled-until TIME) still protects. */
export function protectionOf(image: Image): string | null {
  const value = image.DeregistrationProtection;
  return value === undefined || value === '' || value === 'disabled' ? null : value;
}

/** A launch after the copy was published (its launch check launched it before), within `days` of `now`. */
export function launchedRecently(image: Image, now: Date, days: number): string | null {
  if (days <= 0 || !image.LastLaunchedTime) return null;
  const launched = Date.parse(image.LastLaunchedTime);
  const published = Date.parse(tagOf(image, TAGS.publishedAt) ?? image.CreationDate ?? '');
  if (!Number.isFinite(launched) || (Number.isFinite(published) && launched <= published)) return null;
  return now.getTime() - launched <= days * 86_400_000 ? image.LastLaunchedTime : null;
}

export interface UseChecks {
  ec2: EC2Client;
  ssm: SSMClient;
  where: string;
  parameterName: string | null;
}

/** Why each of `imageIds` is in use (first reason found per image); an image missing from the map is in use nowhere. */
export async function imagesInUse({ ec2, ssm, where, parameterName }: UseChecks, imageIds: string[]): Promise<Map<string, KeepReason>> {
  const wanted = new Set(imageIds);
  const reasons = new Map<string, KeepReason>();
  const keep = (imageId: string | undefined, check: KeepCheck, reason: string) => {
    if (imageId && wanted.has(imageId) && !reasons.has(imageId)) reasons.set(imageId, { check, reason });
  };
  if (imageIds.length === 0) return reasons;

  if (parameterName) {
    const name = parameterName;
    const value = await aws(`Reading parameter ${name} in ${where}`, async () => (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value, {
      fix: READ_FIX,
      absentOn: PARAMETER_ABSENT,
    });
    keep(value, 'parameter', `SSM parameter ${name}`);
  }

  for (let i = 0; i < imageIds.length; i += REFERENCES_PER_CALL) {
    const chunk = imageIds.slice(i, i + REFERENCES_PER_CALL);
    const pages = paginateDescribeImageReferences(
      { client: ec2 },
      {
        ImageIds: chunk,
        ResourceTypes: [
          { ResourceType: 'ec2:Instance', ResourceTypeOptions: [{ OptionName: 'state-name', OptionValues: LIVE_INSTANCE_STATES }] },
          { ResourceType: 'ec2:LaunchTemplate' },
          { ResourceType: 'ssm:Parameter' },
          { ResourceType: 'imagebuilder:ImageRecipe' },
          { ResourceType: 'imagebuilder:ContainerRecipe' },
        ],
      },
    );
    await aws(
      `Looking for references to ${chunk.length} image(s) in ${where}`,
      async () => {
        for await (const page of pages) {
          for (const ref of page.ImageReferences ?? []) keep(ref.ImageId, 'image-references', `referenced by ${ref.ResourceType ?? 'a resource'} ${ref.Arn ?? ''}`.trim());
        }
      },
      READ_FIX,
    );
  }

  // DescribeImageReferences looks at a template's 10 newest versions; its default version can be older.
  const templates = paginateDescribeLaunchTemplates({ client: ec2 }, {});
  const listed: { id: string; name: string }[] = [];
  await aws(
    `Listing launch templates in ${where}`,
    async () => {
      for await (const page of templates) {
        for (const t of page.LaunchTemplates ?? []) if (t.LaunchTemplateId) listed.push({ id: t.LaunchTemplateId, name: t.LaunchTemplateName ?? t.LaunchTemplateId });
      }
    },
    READ_FIX,
  );
  for (const template of listed) {
    // Deleted between the two calls: it keeps nothing.
    const versions = await aws(
      `Reading launch template ${template.name} in ${where}`,
      () => ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.id, Versions: ['$Default'], ResolveAlias: true })),
      { fix: READ_FIX, absentOn: ['InvalidLaunchTemplateId.*'] },
    );
    for (const v of versions?.LaunchTemplateVersions ?? []) {
      keep(v.LaunchTemplateData?.ImageId, 'launch-template-default', `launch template ${template.name} version ${v.VersionNumber ?? '?'} (its default)`);
    }
  }
  return reasons;
}
