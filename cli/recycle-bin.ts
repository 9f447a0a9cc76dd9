/**
 * The doctor's look at a target region's Recycle Bin retention rules (rbin ListRules for EC2_IMAGE and EBS_SNAPSHOT,
 * through the target role): whether a copy retention deregisters can still be recovered after its grace period.
 * Information, never a failure (docs/lifecycle.md, "Recycle Bin"). AWS: a deleted resource matching a rule stays in the
 * bin for the rule's period, its snapshots billed at the standard rate; an AMI whose snapshots leave the bin before it
 * does cannot be restored, so snapshot rules must keep them at least as long.
 */
import type { Clients } from '../functions/shared/client-factory';
import { awsErrorDetail } from '../functions/shared/errors';
import type { Check, CheckedTarget } from '../functions/shared/preflight';
import { paginateListRules, type RbinClient, type RbinResourceType, type RuleSummary } from '../functions/shared/rbin-client';

async function rulesFor(client: RbinClient, resourceType: RbinResourceType): Promise<RuleSummary[]> {
  const rules: RuleSummary[] = [];
  for await (const page of paginateListRules({ client }, { ResourceType: resourceType })) rules.push(...(page.Rules ?? []));
  return rules;
}

const days = (rule: RuleSummary) => rule.RetentionPeriod?.RetentionPeriodValue ?? 0;
const describe = (rule: RuleSummary) =>
  `${rule.Identifier ?? '?'} (${days(rule)} ${(rule.RetentionPeriod?.RetentionPeriodUnit ?? 'DAYS').toLowerCase()}${rule.LockState ? `, ${rule.LockState}` : ''}${rule.Description ? `: ${rule.Description}` : ''})`;
const longest = (rules: RuleSummary[]) => Math.max(0, ...rules.map(days));

export async function recycleBinCheck(item: CheckedTarget, clients: Clients): Promise<Check> {
  const { accountId, region } = item.target;
  const scope = `${accountId}/${region}`;
  const check = 'recycle-bin';
  const grace = item.settings.retention.graceDays;
  let images: RuleSummary[];
  let snapshots: RuleSummary[];
  try {
    const rbin = clients.rbin(region);
    [images, snapshots] = await Promise.all([rulesFor(rbin, 'EC2_IMAGE'), rulesFor(rbin, 'EBS_SNAPSHOT')]);
  } catch (error) {
    const { code, message } = awsErrorDetail(error);
    return {
      scope, check, verdict: 'warn',
      message: 'not checked: Recycle Bin ListRules failed, so whether a retired copy can be recovered is unknown (runs are unaffected)',
      awsError: `${code}: ${message}`,
      fix: 'update the stack of templates/target-account.yml: its role allows rbin:ListRules (for EC2_IMAGE and EBS_SNAPSHOT)',
    };
  }
  const createRules =
    `aws rbin create-rule --region ${region} --resource-type EC2_IMAGE --retention-period RetentionPeriodValue=7,RetentionPeriodUnit=DAYS, ` +
    'and an EBS_SNAPSHOT rule at least as long (docs/lifecycle.md, "Recycle Bin")';
  if (images.length === 0) {
    return {
      scope, check, verdict: 'warn',
      message:
        `no Recycle Bin retention rule for AMIs: a copy retention deregisters is gone for good, with its snapshots (DeleteAssociatedSnapshots); ` +
        `ami-pipeline restore can bring a copy back only while it is disabled, ${grace} day(s) (retention.graceDays)` +
        (snapshots.length > 0 ? `. Snapshot rules ${snapshots.map(describe).join(', ')} keep the deleted snapshots, billed, but not the AMI` : ''),
      fix: `for a safety net past the grace period: ${createRules}`,
    };
  }
  const kept = `AMI rule(s) ${images.map(describe).join(', ')}`;
  if (longest(snapshots) < longest(images)) {
    return {
      scope, check, verdict: 'warn',
      message:
        `${kept} keep a deregistered copy in the Recycle Bin, but ${snapshots.length === 0 ? 'no snapshot rule keeps its snapshots' : `the snapshot rules keep snapshots only ${longest(snapshots)} day(s)`}: ` +
        'an AMI whose snapshots left the bin cannot be restored',
      fix: `aws rbin create-rule --region ${region} --resource-type EBS_SNAPSHOT --retention-period RetentionPeriodValue=${longest(images)},RetentionPeriodUnit=DAYS`,
    };
  }
  return {
    scope, check, verdict: 'pass',
    message:
      `${kept}; snapshot rule(s) ${snapshots.map(describe).join(', ')}: a copy retention deregisters can be restored from the Recycle Bin for up to ` +
      `${longest(images)} day(s), its snapshots billed at the standard rate meanwhile (a tag-level rule keeps only resources with its tags)`,
  };
}
