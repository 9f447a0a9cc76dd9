/**
 * `ami-pipeline restore`: bring back a copy retention disabled (its grace period, retention.graceDays) and point the
 * parameter at it again, for the day a new image turns out bad. Acts inside the target account through the target
 * role the input names. Exit 0 restored; 1 AWS refused; 2 bad usage or input.
 */
import { createClientFactory, sessionNameFor } from '../functions/shared/clients';
import { restoreCopy, type RestoreResult } from '../functions/shared/restore';
import { TAGS } from '../functions/shared/tags';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { Io } from './commands';
import { usageError } from './errors';
import { readInputFile } from './input';

export interface RestoreOptions {
  input: string;
  accountId: string;
  region: string;
  imageId: string;
  /** Overrides the parameter worked out from the input. */
  parameterName?: string;
  output: 'table' | 'json';
  endpointUrl?: string;
}

const ACCOUNT_RE = /^\d{12}$/;
const AMI_RE = /^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

export async function restoreCommand(options: RestoreOptions, io: Io): Promise<number> {
  if (!ACCOUNT_RE.test(options.accountId)) throw usageError(`--account must be a 12-digit account ID, not "${options.accountId}"`, 'restore');
  if (!AMI_RE.test(options.imageId)) throw usageError(`--image must be an AMI ID such as ami-0123456789abcdef0, not "${options.imageId}"`, 'restore');
  const { input } = readInputFile(options.input);
  if (options.endpointUrl) process.env.AWS_ENDPOINT_URL = options.endpointUrl;
  const clients = createClientFactory(options.region).target({
    accountId: options.accountId,
    roleName: input.targetRoleName,
    externalId: input.externalId,
    sessionName: sessionNameFor('restore'),
  });
  const template = input.publish.parameterName;
  let parameterName: string | null = options.parameterName ?? null;
  if (parameterName === null && template !== undefined) {
    if (!template.includes('{')) parameterName = template;
    else if (input.retention.lineage === undefined) {
      // Without retention.lineage, a copy's lineage tag is the expanded parameter name.
      const image = (await clients.ec2(options.region).send(new DescribeImagesCommand({ ImageIds: [options.imageId], IncludeDisabled: true }))).Images?.[0];
      parameterName = image?.Tags?.find((t) => t.Key === TAGS.lineage)?.Value ?? null;
    }
    if (parameterName === null) throw usageError(`publish.parameterName ${template} has placeholders: give the parameter with --parameter NAME`, 'restore');
  }
  const result = await restoreCopy(
    { accountId: options.accountId, region: options.region, imageId: options.imageId, parameterName, protect: input.publish.protect },
    clients,
  );
  io.stdout.write(options.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : describe(result, options));
  return 0;
}

function describe(result: RestoreResult, options: RestoreOptions): string {
  const lines = [`${result.imageId} in ${options.accountId}/${options.region}: ${result.was === 'disabled' ? 'enabled again' : 'was available; left enabled'}`];
  if (result.parameter) lines.push(`parameter ${result.parameter.name}: ${result.parameter.previous ?? '(none)'} -> ${result.imageId} (version ${result.parameter.version ?? '?'})`);
  if (result.protection.imageId) lines.push(`deregistration protection on ${result.protection.imageId}${result.protection.movedFrom ? `, lifted from ${result.protection.movedFrom}` : ''}`);
  lines.push('The next run publishes its new copy again; restore keeps this copy only until then (retention keeps the image the parameter points at).');
  return `${lines.join('\n')}\n`;
}
