/**
 * The doctor's look at a target region's Allowed AMIs setting (GetAllowedImagesSettings, through the target role):
 * information, never a failure. AWS: images the account owns are always allowed, whatever the criteria, so the
 * pipeline's copies are; an image only shared with the account (the sharing-based setups this pipeline replaces)
 * must match them (docs/lifecycle.md).
 */
import { GetAllowedImagesSettingsCommand } from '@aws-sdk/client-ec2';
import type { Clients } from '../functions/shared/client-factory';
import { awsErrorDetail } from '../functions/shared/errors';
import type { Check, CheckedTarget } from '../functions/shared/preflight';

export async function allowedImagesCheck(item: CheckedTarget, clients: Clients): Promise<Check> {
  const { accountId, region } = item.target;
  const scope = `${accountId}/${region}`;
  let out;
  try {
    out = await clients.ec2(region).send(new GetAllowedImagesSettingsCommand({}));
  } catch (error) {
    const { code, message } = awsErrorDetail(error);
    return {
      scope,
      check: 'allowed-amis',
      verdict: 'warn',
      message: 'not checked: GetAllowedImagesSettings failed (the copies are owned by the account and allowed whatever the setting)',
      awsError: `${code}: ${message}`,
      fix: 'update the stack of templates/target-account.yml (it allows ec2:GetAllowedImagesSettings), or ignore: runs are unaffected',
    };
  }
  const state = out.State ?? 'unknown';
  const criteria = out.ImageCriteria?.length ?? 0;
  const managedBy = out.ManagedBy ? `, managed by ${out.ManagedBy}` : '';
  if (state === 'disabled') return { scope, check: 'allowed-amis', verdict: 'pass', message: 'Allowed AMIs: disabled (every AMI may be used)' };
  return {
    scope,
    check: 'allowed-amis',
    verdict: 'pass',
    message:
      `Allowed AMIs: ${state}${managedBy}, ${criteria} criteria. The pipeline's copies are owned by ${accountId} and always allowed; ` +
      'an image only shared with this account must match the criteria, so launch from the copies (the published parameter), not from the shared source',
  };
}
