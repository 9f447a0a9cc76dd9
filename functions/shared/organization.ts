/**
 * Targets from AWS Organizations: each `organizationalUnitId` entry becomes one target per ACTIVE account of that OU
 * (or root) and of its child OUs at any depth, minus `excludeAccountIds`. Read with the SDK's paginators
 * (ListOrganizationalUnitsForParent, ListAccountsForParent) as the builder account (a delegated administrator) or
 * through `organization.roleArn`. An explicit `accountId` entry wins over an OU entry; two OU entries that reach one
 * account with different settings are refused, naming both OUs. docs/organizations.md walks through the rules.
 */
import {
  paginateListAccountsForParent,
  paginateListOrganizationalUnitsForParent,
  type Account,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations';
import type { ClientFactory } from './client-factory';
import {
  aws,
  type AwsErrorFactory,
  awsErrorDetail,
  InvalidInputError,
  OrganizationAccessDeniedError,
  TargetRoleNotAssumableError,
} from './errors';
import type { PipelineInput, Target } from './input';
import type { OuExpansion } from './manifest-schema';
import { explicitTargets } from './plan';

/** A target entry for one account, as the run plans it: the OU it came from, or null for an explicit entry. */
export type ResolvedTarget = Omit<Target, 'accountId' | 'organizationalUnitId' | 'excludeAccountIds'> & {
  accountId: string;
  organizationalUnitId: string | null;
};

/** What one OU entry expanded to, for the run's output (its schema is the manifest's). */
export type { OuExpansion };

/**
 * Accounts listed per category (skipped, excluded, covered elsewhere) in the run's output; the rest are counted.
 * An OU of thousands of suspended accounts must not push ResolveSource's output past Step Functions' 262,144 bytes.
 */
export const MAX_LISTED = 100;

function capped(expansion: OuExpansion): OuExpansion {
  const over = (n: number) => Math.max(0, n - MAX_LISTED);
  const notListed = { skipped: over(expansion.skipped.length), excluded: over(expansion.excluded.length), coveredElsewhere: over(expansion.coveredElsewhere.length) };
  if (notListed.skipped + notListed.excluded + notListed.coveredElsewhere === 0) return expansion;
  return {
    ...expansion,
    skipped: expansion.skipped.slice(0, MAX_LISTED),
    excluded: expansion.excluded.slice(0, MAX_LISTED),
    coveredElsewhere: expansion.coveredElsewhere.slice(0, MAX_LISTED),
    notListed,
  };
}

export interface Resolution {
  targets: ResolvedTarget[];
  organization: OuExpansion[];
  /** When each account an OU entry targets joined the organization (ListAccountsForParent's JoinedTimestamp, ISO 8601). */
  joinedAt: Record<string, string>;
}

function accessFix(roleArn: string | undefined): string {
  return roleArn
    ? `Organizations refused ${roleArn}: deploy templates/organization.yml in the management account (it creates that role with ` +
        'organizations:ListAccountsForParent and ListOrganizationalUnitsForParent, trusting the pipeline), or fix ' +
        '"organization.roleArn".'
    : 'The builder account cannot read the organization: either make it a delegated administrator for AWS Organizations ' +
        '(from the management account, aws organizations put-resource-policy allowing it organizations:ListAccountsForParent and ' +
        'ListOrganizationalUnitsForParent; see docs/organizations.md), or deploy templates/organization.yml in the management account ' +
        'and set "organization.roleArn" to the role it creates.';
}

/**
 * An Organizations call, its errors translated: a refusal (or organization.roleArn that cannot be assumed) says which
 * of the two set-ups is missing; an unknown OU is bad input; the rest as every AWS call.
 */
async function organizationsCall<T>(action: string, call: () => Promise<T>, roleArn: string | undefined, ouId: string): Promise<T> {
  const denied: AwsErrorFactory = (detail, options) =>
    new OrganizationAccessDeniedError(`${action} failed: ${detail.code}: ${detail.message}. ${accessFix(roleArn)}`, options);
  const unknownOu: AwsErrorFactory = (detail) =>
    new InvalidInputError([`targets: organizationalUnitId ${ouId} is not an OU or root of the organization (${detail.code}); check the ID (aws organizations list-roots, list-organizational-units-for-parent)`]);
  try {
    return await aws(action, call, {
      errors: { AccessDeniedException: denied, AccessDenied: denied, AWSOrganizationsNotInUseException: denied, ParentNotFoundException: unknownOu, InvalidInputException: unknownOu },
    });
  } catch (error) {
    if (!(error instanceof TargetRoleNotAssumableError)) throw error;
    const detail = error.aws ?? awsErrorDetail(error);
    throw denied(detail, { cause: error, aws: detail });
  }
}

export interface OrganizationDeps {
  clients: ClientFactory;
  /** Region of the pipeline: picks the partition's Organizations endpoint and STS region. */
  pipelineRegion: string;
  sessionName: string;
}

/** The Organizations client: the builder's own, or through organization.roleArn. */
function organizationsClient(roleArn: string | undefined, deps: OrganizationDeps): OrganizationsClient {
  if (!roleArn) return deps.clients.builder().organizations(deps.pipelineRegion);
  const [, , , , accountId = '', resource = ''] = roleArn.split(':');
  return deps.clients.target({ accountId, roleName: resource.slice('role/'.length), sessionName: deps.sessionName }).organizations(deps.pipelineRegion);
}

/** Every account under `parentId` and its child OUs, breadth first; each account once. */
export async function accountsUnder(org: OrganizationsClient, parentId: string): Promise<Account[]> {
  const accounts = new Map<string, Account>();
  const queue = [parentId];
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    for await (const page of paginateListAccountsForParent({ client: org }, { ParentId: parent })) {
      for (const account of page.Accounts ?? []) if (account.Id) accounts.set(account.Id, account);
    }
    for await (const page of paginateListOrganizationalUnitsForParent({ client: org }, { ParentId: parent })) {
      for (const ou of page.OrganizationalUnits ?? []) if (ou.Id) queue.push(ou.Id);
    }
  }
  return [...accounts.values()];
}

/** The account's lifecycle state: `State` (Status is retired on 9 September 2026), else `Status`. */
export function stateOf(account: Account): string {
  return account.State ?? account.Status ?? 'UNKNOWN';
}

const settingsKey = (t: Pick<Target, 'regions' | 'kmsKey' | 'subnetIds'>) =>
  JSON.stringify({ regions: [...t.regions].sort(), kmsKey: t.kmsKey, subnetIds: t.subnetIds ?? {} });

/**
 * Resolve the input's targets into one entry per account. Explicit entries pass through; each OU entry is read from
 * Organizations. Throws InvalidInputError for overlapping OU entries with different settings (naming both OUs) and for
 * an unknown OU, OrganizationAccessDeniedError when Organizations refuses, and the retryable errors of every AWS call.
 */
export async function resolveTargets(input: PipelineInput, deps: OrganizationDeps): Promise<Resolution> {
  const entries = input.targets ?? [];
  const explicit = explicitTargets(input);
  const ouEntries = entries.filter((t) => t.organizationalUnitId !== undefined);
  if (ouEntries.length === 0) return { targets: explicit, organization: [], joinedAt: {} };

  const roleArn = input.organization.roleArn;
  const org = organizationsClient(roleArn, deps);
  const explicitIds = new Set(explicit.map((t) => t.accountId));
  const claimedBy = new Map<string, { ouId: string; key: string }>();
  const targets = [...explicit];
  const organization: OuExpansion[] = [];
  const joinedAt: Record<string, string> = {};
  const conflicts: string[] = [];

  for (const entry of ouEntries) {
    const ouId = entry.organizationalUnitId ?? '';
    const accounts = await organizationsCall(`Listing the accounts of ${ouId}`, () => accountsUnder(org, ouId), roleArn, ouId);
    const excluded = new Set(entry.excludeAccountIds ?? []);
    const key = settingsKey(entry);
    const expansion: OuExpansion = { organizationalUnitId: ouId, found: accounts.length, targeted: [], skipped: [], excluded: [], coveredElsewhere: [] };
    for (const account of accounts.sort((a, b) => (a.Id ?? '').localeCompare(b.Id ?? ''))) {
      const id = account.Id ?? '';
      const state = stateOf(account);
      if (excluded.has(id)) expansion.excluded.push(id);
      else if (state !== 'ACTIVE') expansion.skipped.push({ accountId: id, state });
      else if (explicitIds.has(id)) expansion.coveredElsewhere.push(id);
      else {
        const earlier = claimedBy.get(id);
        if (earlier && earlier.key !== key) {
          conflicts.push(`account ${id} is in both ${earlier.ouId} and ${ouId}, whose entries differ (regions, kmsKey or subnetIds)`);
        } else if (earlier) expansion.coveredElsewhere.push(id);
        else {
          claimedBy.set(id, { ouId, key });
          expansion.targeted.push(id);
          if (account.JoinedTimestamp) joinedAt[id] = account.JoinedTimestamp.toISOString();
          targets.push({ accountId: id, organizationalUnitId: ouId, regions: entry.regions, kmsKey: entry.kmsKey, ...(entry.subnetIds ? { subnetIds: entry.subnetIds } : {}) });
        }
      }
    }
    organization.push(capped(expansion));
  }
  if (conflicts.length > 0) {
    throw new InvalidInputError(
      conflicts.map((c) => `targets: ${c}; give both entries the same settings, exclude the account from one (excludeAccountIds), or list it explicitly with accountId (an explicit entry wins)`),
    );
  }
  return { targets, organization, joinedAt };
}
