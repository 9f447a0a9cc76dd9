import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidInputError, MAX_LISTED_PROBLEMS } from '../../functions/shared/errors';
import { parseInput, sdkKnowsRegion } from '../../functions/shared/input';
import { resolveSource } from '../../functions/shared/resolve-source';
import { ACCOUNT_A, ACCOUNT_B, awsError, BUILDER, SOURCE_IMAGE, testClients } from '../support/fixtures';
import { memoryRunStore } from '../support/run-store';

const KEY_B_EU = `arn:aws:kms:eu-west-1:${ACCOUNT_B}:key/22222222-2222-2222-2222-222222222222`;
const KEY_B_US = `arn:aws:kms:us-east-1:${ACCOUNT_B}:key/33333333-3333-3333-3333-333333333333`;

interface BaseInput {
  source: Record<string, unknown>;
  targets: [Record<string, unknown>, Record<string, unknown>];
  [field: string]: unknown;
}

/** A valid input: one target with an alias for both its regions, one with a key ARN per region. */
function baseInput(): BaseInput {
  return {
    source: { imageId: SOURCE_IMAGE, region: 'eu-west-1' },
    targets: [
      { accountId: ACCOUNT_A, regions: ['eu-west-1', 'eu-central-1'], kmsKey: 'alias/ami-encryption' },
      { accountId: ACCOUNT_B, regions: ['eu-west-1', 'us-east-1'], kmsKey: { 'eu-west-1': KEY_B_EU, 'us-east-1': KEY_B_US } },
    ],
  };
}

/** The per-region key map of the second target. */
const keyMapOf = (input: BaseInput) => input.targets[1].kmsKey as Record<string, unknown>;

/** The base input after `change`, which edits it in place or returns a replacement. */
function edit(change: (input: BaseInput) => unknown): unknown {
  const input = baseInput();
  const replaced = change(input);
  return replaced === undefined ? input : replaced;
}

const TEN_REGIONS = [
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1',
  'eu-west-2', 'eu-west-3', 'eu-central-1', 'eu-north-1', 'ap-southeast-2',
];

interface Row {
  /** Completes "refuses ..." */
  what: string;
  input: unknown;
  /** The field path the message must start with. */
  path: string;
  /** A word or phrase of the fix the message must contain. */
  fix: string;
  /** How many problems the input has; one unless said. */
  issues?: number;
}

const rows: Row[] = [
  { what: 'a copy tag key with the aws: prefix', input: edit((i) => { i.copy = { tags: { 'aws:owner': 'x' } }; }), path: 'copy.tags.aws:owner', fix: 'reserved by AWS' },
  { what: "a copy tag key with the pipeline's prefix", input: edit((i) => { i.copy = { tags: { 'ami-pipeline:lineage': 'x' } }; }), path: 'copy.tags.ami-pipeline:lineage', fix: 'choose another key' },
  { what: 'a copy tag with an unknown placeholder', input: edit((i) => { i.copy = { tags: { team: '{owner}' } }; }), path: 'copy.tags.team', fix: '{sourceImageId}' },
  {
    what: 'more copy tags than a copy has room for',
    input: edit((i) => { i.copy = { tags: Object.fromEntries(Array.from({ length: 30 }, (_, n) => [`k${n}`, 'v'])), copySourceTags: Array.from({ length: 9 }, (_, n) => `s${n}`) }; }),
    path: 'copy.tags',
    fix: 'at most 38',
  },
  { what: 'copySourceTags that is neither a list nor a boolean', input: edit((i) => { i.copy = { copySourceTags: 'all' }; }), path: 'copy.copySourceTags', fix: 'list of tag keys' },
  { what: 'a deprecation past EC2\'s 10 years', input: edit((i) => { i.copy = { deprecateAfterDays: 4000 }; }), path: 'copy.deprecateAfterDays', fix: 'at most 3650' },
  { what: 'a protection setting EC2 has not', input: edit((i) => { i.publish = { protect: 'always' }; }), path: 'publish.protect', fix: '"with-cooldown"' },
  { what: 'a negative grace period', input: edit((i) => { i.retention = { graceDays: -1 }; }), path: 'retention.graceDays', fix: 'at least 0' },
  { what: 'a fractional launch window', input: edit((i) => { i.retention = { keepIfLaunchedWithinDays: 1.5 }; }), path: 'retention.keepIfLaunchedWithinDays', fix: 'whole number' },
  { what: 'an input without a source', input: edit((i) => ({ targets: i.targets })), path: 'source', fix: '"imageId"' },
  { what: 'a source without a region', input: edit((i) => { delete i.source.region; }), path: 'source.region', fix: 'eu-west-1' },
  { what: 'a malformed AMI ID', input: edit((i) => { i.source.imageId = 'ami-12345'; }), path: 'source.imageId', fix: 'ami-0123456789abcdef0' },
  {
    what: 'a source with both imageId and filter',
    input: edit((i) => { i.source.filter = { name: 'base-image-*' }; }),
    path: 'source',
    fix: 'exactly one of "imageId" or "filter"',
  },
  { what: 'a source with neither imageId nor filter', input: edit((i) => { delete i.source.imageId; }), path: 'source', fix: 'exactly one of' },
  {
    what: 'a filter with neither name nor tags',
    input: edit((i) => { delete i.source.imageId; i.source.filter = {}; }),
    path: 'source.filter',
    fix: '"name" and/or "tags"',
  },
  {
    what: 'a filter with an empty tag map',
    input: edit((i) => { delete i.source.imageId; i.source.filter = { tags: {} }; }),
    path: 'source.filter.tags',
    fix: 'at least one tag',
  },
  { what: 'a region name without its number', input: edit((i) => { i.source.region = 'eu-west'; }), path: 'source.region', fix: 'eu-west-1' },
  { what: 'a region name in capitals', input: edit((i) => { i.targets[0].regions = ['EU-WEST-1']; }), path: 'targets[0].regions[0]', fix: 'eu-west-1' },
  { what: 'an account ID of 11 digits', input: edit((i) => { i.targets[0].accountId = '11111111111'; }), path: 'targets[0].accountId', fix: '12 digits' },
  {
    what: 'an account ID given as a JSON number',
    input: edit((i) => { i.targets[1].accountId = 222222222222; }),
    path: 'targets[1].accountId',
    fix: 'string of 12 digits',
  },
  {
    what: 'the same account in two targets',
    input: edit((i) => { i.targets[1].accountId = ACCOUNT_A; i.targets[1].kmsKey = 'alias/ami-encryption'; }),
    path: 'targets[1].accountId',
    fix: 'list each account once',
  },
  {
    what: 'the same region twice in one target',
    input: edit((i) => { i.targets[0].regions = ['eu-west-1', 'eu-west-1']; }),
    path: 'targets[0].regions[1]',
    fix: 'list each region once',
  },
  { what: 'a target with no regions', input: edit((i) => { i.targets[0].regions = []; }), path: 'targets[0].regions', fix: 'at least one region' },
  { what: 'an empty list of targets', input: edit((i) => ({ source: i.source, targets: [] })), path: 'targets', fix: 'at least one target account' },
  { what: 'an input without targets or targetsParameter', input: edit((i) => ({ source: i.source })), path: 'targets', fix: '"targetsParameter"' },
  { what: 'a target without a kmsKey', input: edit((i) => { delete i.targets[0].kmsKey; }), path: 'targets[0].kmsKey', fix: 'alias/NAME' },
  {
    what: 'the AWS managed EBS key',
    input: edit((i) => { i.targets[0].kmsKey = 'alias/aws/ebs'; }),
    path: 'targets[0].kmsKey',
    fix: 'customer managed key',
  },
  {
    what: 'the AWS managed EBS key given as an alias ARN',
    input: edit((i) => { keyMapOf(i)['us-east-1'] = `arn:aws:kms:us-east-1:${ACCOUNT_B}:alias/aws/ebs`; }),
    path: 'targets[1].kmsKey.us-east-1',
    fix: 'customer managed key',
  },
  {
    what: 'a key ARN of another account',
    input: edit((i) => { keyMapOf(i)['eu-west-1'] = `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111`; }),
    path: 'targets[1].kmsKey.eu-west-1',
    fix: `a key of account ${ACCOUNT_B}`,
  },
  {
    what: 'a key ARN in another region than its map key',
    input: edit((i) => { keyMapOf(i)['us-east-1'] = KEY_B_EU; }),
    path: 'targets[1].kmsKey.us-east-1',
    fix: 'give the key of us-east-1',
  },
  {
    what: 'a key map that lacks one of the regions',
    input: edit((i) => { delete keyMapOf(i)['us-east-1']; }),
    path: 'targets[1].kmsKey.us-east-1',
    fix: 'give the key for region us-east-1',
  },
  {
    what: 'a key map with a region the target does not list',
    input: edit((i) => { keyMapOf(i)['us-west-2'] = `arn:aws:kms:us-west-2:${ACCOUNT_B}:key/44444444-4444-4444-4444-444444444444`; }),
    path: 'targets[1].kmsKey.us-west-2',
    fix: "not in this target's regions",
  },
  {
    what: 'a key map keyed by something other than region names',
    input: edit((i) => { i.targets[1].kmsKey = { 'eu-west-1': KEY_B_EU, 'us-east-1': KEY_B_US, default: KEY_B_EU }; }),
    path: 'targets[1].kmsKey',
    fix: 'an object of region name to key ARN',
  },
  {
    what: 'one key ARN for a target of two regions',
    input: edit((i) => { i.targets[1].kmsKey = KEY_B_EU; }),
    path: 'targets[1].kmsKey',
    fix: 'an object of region name to key ARN',
  },
  {
    what: 'one key ID for a target of two regions',
    input: edit((i) => { i.targets[0].kmsKey = '11111111-1111-1111-1111-111111111111'; }),
    path: 'targets[0].kmsKey',
    fix: 'one key per region',
  },
  { what: 'a key given by a bare name', input: edit((i) => { i.targets[0].kmsKey = 'ami-encryption'; }), path: 'targets[0].kmsKey', fix: 'alias/NAME' },
  {
    what: 'an unknown top-level field',
    input: edit((i) => ({ source: i.source, target: i.targets })),
    path: 'target',
    fix: 'remove it',
    // The misspelling also leaves "targets" missing, which is worth saying.
    issues: 2,
  },
  {
    what: 'an unknown field inside a target',
    input: edit((i) => { i.targets[0].region = 'eu-west-1'; }),
    path: 'targets[0].region',
    fix: 'remove it',
  },
  { what: 'an unknown field in verify', input: edit((i) => { i.verify = { instance: 't3.micro' }; }), path: 'verify.instance', fix: 'remove it' },
  { what: 'an unknown verify mode', input: edit((i) => { i.verify = { mode: 'autoscaling' }; }), path: 'verify.mode', fix: '"auto-scaling"' },
  { what: 'a malformed instance type', input: edit((i) => { i.verify = { instanceType: 't3micro' }; }), path: 'verify.instanceType', fix: 't3.micro' },
  {
    what: 'a verify timeout under 5 minutes',
    input: edit((i) => { i.verify = { timeoutMinutes: 2 }; }),
    path: 'verify.timeoutMinutes',
    fix: 'at least 5',
  },
  {
    what: 'a malformed subnet ID in verify',
    input: edit((i) => { i.verify = { subnetIds: { 'eu-west-1': 'subnet-123' } }; }),
    path: 'verify.subnetIds.eu-west-1',
    fix: 'subnet-0123456789abcdef0',
  },
  {
    what: 'a malformed subnet ID in a target',
    input: edit((i) => { i.targets[0].subnetIds = { 'eu-central-1': 'sn-0123456789abcdef0' }; }),
    path: 'targets[0].subnetIds.eu-central-1',
    fix: 'subnet-0123456789abcdef0',
  },
  {
    what: 'a subnet for a region the target does not list',
    input: edit((i) => { i.targets[0].subnetIds = { 'us-west-2': 'subnet-0123456789abcdef0' }; }),
    path: 'targets[0].subnetIds.us-west-2',
    fix: "not in this target's regions",
  },
  { what: 'a copy timeout of 5 minutes', input: edit((i) => { i.copy = { timeoutMinutes: 5 }; }), path: 'copy.timeoutMinutes', fix: 'at least 10' },
  { what: 'a copy timeout of 1000 minutes', input: edit((i) => { i.copy = { timeoutMinutes: 1000 }; }), path: 'copy.timeoutMinutes', fix: 'at most 720' },
  { what: 'a copy timeout of 12.5 minutes', input: edit((i) => { i.copy = { timeoutMinutes: 12.5 }; }), path: 'copy.timeoutMinutes', fix: 'whole number' },
  {
    what: 'a copy timeout given as a string',
    input: edit((i) => { i.copy = { timeoutMinutes: '180' }; }),
    path: 'copy.timeoutMinutes',
    fix: 'number of minutes',
  },
  {
    what: 'a copy name with an unknown placeholder',
    input: edit((i) => { i.copy = { name: '{sourceName}-{build}' }; }),
    path: 'copy.name',
    fix: '{sourceImageId}',
  },
  {
    what: 'a copy name with characters AMI names do not allow',
    input: edit((i) => { i.copy = { name: 'base#{date}' }; }),
    path: 'copy.name',
    fix: 'may only contain',
  },
  { what: 'a maxConcurrency of 0', input: edit((i) => { i.maxConcurrency = 0; }), path: 'maxConcurrency', fix: 'at least 1' },
  { what: 'a maxConcurrency of 1001', input: edit((i) => { i.maxConcurrency = 1001; }), path: 'maxConcurrency', fix: 'at most 1000' },
  {
    what: 'a targetRoleName with a path',
    input: edit((i) => { i.targetRoleName = 'pipelines/AmiPipelineTarget'; }),
    path: 'targetRoleName',
    fix: 'without a path',
  },
  { what: 'an externalId of one character', input: edit((i) => { i.externalId = 'x'; }), path: 'externalId', fix: '2-1224 characters' },
  {
    what: 'a malformed targetsParameter',
    input: edit((i) => ({ source: i.source, targetsParameter: 'ami pipeline targets' })),
    path: 'targetsParameter',
    fix: '/ami-pipeline/targets',
  },
  {
    what: 'more account-region pairs than one run takes',
    input: edit((i) => ({
      source: i.source,
      targets: Array.from({ length: 101 }, (_, n) => ({
        accountId: String(300000000000 + n),
        regions: TEN_REGIONS,
        kmsKey: 'alias/ami-encryption',
      })),
    })),
    path: 'targets',
    fix: 'split the targets over 2 or more runs of at most 1000 pairs each',
  },
  // A value of the wrong type names the type expected and what was there, not "required but missing".
  { what: 'verify given as true', input: edit((i) => { i.verify = true; }), path: 'verify', fix: 'must be an object ({ ... }), not true' },
  { what: 'copy given as a list', input: edit((i) => { i.copy = []; }), path: 'copy', fix: 'must be an object ({ ... }), not a list' },
  { what: 'publish given as a number', input: edit((i) => { i.publish = 7; }), path: 'publish', fix: 'must be an object ({ ... }), not the number 7' },
  { what: 'retention given as a string', input: edit((i) => { i.retention = '3'; }), path: 'retention', fix: 'must be an object ({ ... }), not the string "3"' },
  { what: 'notify given as null', input: edit((i) => { i.notify = null; }), path: 'notify', fix: 'must be an object ({ ... }), not null' },
  {
    what: 'a filter name given as a number',
    input: edit((i) => { i.source = { filter: { name: 123 }, region: 'eu-west-1' }; }),
    path: 'source.filter.name',
    fix: 'must be a string, not the number 123',
  },
  { what: 'a targetsParameter given as a number', input: edit((i) => { i.targetsParameter = 42; }), path: 'targetsParameter', fix: 'must be a string, not the number 42' },
  { what: 'an externalId given as null', input: edit((i) => { i.externalId = null; }), path: 'externalId', fix: 'must be a string, not null' },
  {
    what: 'a "__proto__" tag key, which JavaScript would drop',
    input: edit((i) => { i.source = { filter: { tags: JSON.parse('{"__proto__": "x", "Team": "web"}') as unknown }, region: 'eu-west-1' }; }),
    path: 'source.filter.tags.__proto__',
    fix: 'a key named "__proto__" is refused',
  },
  {
    what: 'a region the AWS SDK does not know',
    input: edit((i) => { i.targets[0].regions = ['eu-west-1', 'zz-nowhere-9']; }),
    path: 'targets[0].regions[1]',
    fix: 'names region zz-nowhere-9, which the AWS SDK\'s partition data does not list',
  },
  { what: 'a source region the AWS SDK does not know', input: edit((i) => { i.source.region = 'eu-wset-1'; }), path: 'source.region', fix: 'add it to "allowRegions"' },
  {
    what: 'a target with both accountId and organizationalUnitId',
    input: edit((i) => { i.targets[0].organizationalUnitId = 'ou-ab12-34cd56ef'; }),
    path: 'targets[0]',
    fix: 'exactly one of "accountId" (one account) or "organizationalUnitId"',
  },
  {
    what: 'a target with neither accountId nor organizationalUnitId',
    input: edit((i) => { delete i.targets[0].accountId; }),
    path: 'targets[0]',
    fix: 'exactly one of "accountId"',
  },
  { what: 'a malformed OU ID', input: edit((i) => { delete i.targets[0].accountId; i.targets[0].organizationalUnitId = 'ou-12'; }), path: 'targets[0].organizationalUnitId', fix: 'ou-ab12-34cd56ef' },
  { what: 'excludeAccountIds on an accountId entry', input: edit((i) => { i.targets[0].excludeAccountIds = [ACCOUNT_B]; }), path: 'targets[0].excludeAccountIds', fix: 'only applies to an organizationalUnitId entry' },
  {
    what: 'an OU entry that names one key by ARN',
    input: edit((i) => { delete i.targets[1].accountId; i.targets[1].organizationalUnitId = 'r-ab12'; }),
    path: 'targets[1].kmsKey.eu-west-1',
    fix: 'give an alias',
    issues: 2,
  },
  {
    what: 'an OU listed twice',
    input: edit((i) => {
      for (const t of i.targets) { delete t.accountId; t.organizationalUnitId = 'ou-ab12-34cd56ef'; t.kmsKey = 'alias/ami-encryption'; }
    }),
    path: 'targets[1].organizationalUnitId',
    fix: 'list each OU once',
  },
  { what: 'an organization role that is not a role ARN', input: edit((i) => { i.organization = { roleArn: 'arn:aws:iam::123456789012:user/me' }; }), path: 'organization.roleArn', fix: 'role ARN' },
];

function invalidInputError(call: () => unknown): InvalidInputError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected parseInput to throw');
}

describe('parseInput', () => {
  it('accepts the base input and fills in the defaults', () => {
    const input = parseInput(baseInput());
    expect(input.targets).toEqual(baseInput().targets);
    expect(input.targetRoleName).toBe('AmiPipelineTarget');
    expect(input.verify.mode).toBe('auto-scaling');
    expect(input.verify.timeoutMinutes).toBe(15);
    expect(input.copy.timeoutMinutes).toBe(180);
    expect(input.copy).toMatchObject({ deprecateAfterDays: 365, tags: {}, copySourceTags: false });
    expect(input.publish.protect).toBe(true);
    expect(input.retention).toMatchObject({ graceDays: 7, keepIfLaunchedWithinDays: 14 });
    expect(input.maxConcurrency).toBeUndefined();
    expect(input.externalId).toBeUndefined();
  });

  it('accepts a source given by filter with every optional setting spelled out', () => {
    const input = parseInput(
      edit((i) => {
        i.source = { filter: { name: 'base-image-*', tags: { team: 'platform' } }, region: 'eu-west-1', optInTag: { key: 'distribute', value: 'true' } };
        i.targets[0].subnetIds = { 'eu-central-1': 'subnet-0123456789abcdef0' };
        i.verify = { mode: 'run-instances', instanceType: 'm7g.large', timeoutMinutes: 30 };
        i.copy = { name: '{sourceName}-{region}-{date}', timeoutMinutes: 60, deprecateAfterDays: null, tags: { team: '{sourceName}' }, copySourceTags: ['owner'] };
        i.publish = { parameterName: '/ami/{sourceName}', launchTemplates: ['web'], protect: 'with-cooldown' };
        i.retention = { keep: 2, lineage: 'web', dryRun: false, graceDays: 0, keepIfLaunchedWithinDays: 30 };
        i.maxConcurrency = 40;
        i.targetRoleName = 'AmiCopier';
        i.externalId = 'ami-pipeline:prod';
      }),
    );
    expect(input.verify).toEqual({ mode: 'run-instances', instanceType: 'm7g.large', timeoutMinutes: 30 });
    expect(input.copy).toEqual({ name: '{sourceName}-{region}-{date}', timeoutMinutes: 60, deprecateAfterDays: null, tags: { team: '{sourceName}' }, copySourceTags: ['owner'] });
    expect(input.publish.protect).toBe('with-cooldown');
    expect(input.retention).toEqual({ keep: 2, lineage: 'web', dryRun: false, graceDays: 0, keepIfLaunchedWithinDays: 30 });
    expect(input.maxConcurrency).toBe(40);
  });

  it('accepts OU and root entries with exclusions beside accountId entries, and an organization role', () => {
    const input = parseInput(
      edit((i) => {
        i.targets.push(
          { organizationalUnitId: 'ou-ab12-34cd56ef', regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption', excludeAccountIds: ['444444444444'] },
          { organizationalUnitId: 'r-ab12', regions: ['us-east-1'], kmsKey: { 'us-east-1': 'alias/ami-encryption' } },
        );
        i.organization = { roleArn: 'arn:aws:iam::123456789012:role/ami-pipeline-org-reader' };
      }),
    );
    expect(input.targets?.map((t) => t.organizationalUnitId ?? t.accountId)).toEqual([ACCOUNT_A, ACCOUNT_B, 'ou-ab12-34cd56ef', 'r-ab12']);
    expect(input.organization.roleArn).toBe('arn:aws:iam::123456789012:role/ami-pipeline-org-reader');
  });

  it('has at least 35 malformed inputs in its table', () => {
    expect(rows.length).toBeGreaterThanOrEqual(35);
  });

  it.each(rows)('refuses $what, naming $path and the fix', ({ input, path, fix, issues = 1 }) => {
    const error = invalidInputError(() => parseInput(input));
    expect(error.name).toBe('InvalidInputError');
    expect(error.retryable).toBe(false);
    const issue = error.issues.find((i) => i.startsWith(`${path}: `));
    expect(issue, `no issue for ${path} in:\n${error.issues.join('\n')}`).toBeDefined();
    expect(issue).toContain(fix);
    expect(error.message).toContain(issue);
    // One mistake, one message: a row that produces extra noise would bury the fix.
    expect(error.issues).toHaveLength(issues);
  });

  it('lists every problem of an input in one error', () => {
    const error = invalidInputError(() =>
      parseInput(
        edit((i) => {
          i.source.imageId = 'ami-xyz';
          i.targets[0].accountId = '11111111111';
          i.targets[1].regions = ['eu-west-1', 'EU-WEST-2'];
          i.maxConcurrency = 0;
          i.extra = true;
        }),
      ),
    );
    expect(error.issues.length).toBeGreaterThanOrEqual(3);
    for (const path of ['source.imageId', 'targets[0].accountId', 'targets[1].regions[1]', 'maxConcurrency', 'extra']) {
      expect(error.issues.some((i) => i.startsWith(`${path}: `)), path).toBe(true);
    }
    expect(error.message).toContain(`(${error.issues.length} problems)`);
  });

  it('accepts a region newer than the SDK when the input allows it', () => {
    const input = parseInput(edit((i) => { i.targets[0].regions = ['eu-west-1', 'zz-nowhere-9']; i.allowRegions = ['zz-nowhere-9']; }));
    expect(input.targets?.[0]?.regions).toEqual(['eu-west-1', 'zz-nowhere-9']);
  });

  it('knows the regions of every partition from the SDK, and no made-up ones', () => {
    for (const r of ['eu-west-1', 'us-east-1', 'ap-southeast-7', 'cn-north-1', 'us-gov-west-1']) expect(sdkKnowsRegion(r), r).toBe(true);
    for (const r of ['zz-nowhere-9', 'eu-west-9', 'us-east-99', 'aws-global']) expect(sdkKnowsRegion(r), r).toBe(r === 'aws-global');
  });

  it('lists the first 20 of 100,000 problems and counts the rest', () => {
    const error = invalidInputError(() => parseInput(edit((i) => { i.targets[0].regions = Array<string>(100_000).fill('eu-west-1'); })));
    expect(error.issues).toHaveLength(100_000);
    const listed = error.message.split('\n').filter((l) => l.startsWith('- '));
    expect(listed).toHaveLength(MAX_LISTED_PROBLEMS + 1);
    expect(listed[0]).toBe('- targets[0].regions[1]: repeats region eu-west-1; list each region once');
    expect(listed[MAX_LISTED_PROBLEMS]).toBe(`- ... and ${100_000 - MAX_LISTED_PROBLEMS} more (fix these and validate again)`);
    expect(error.message.length).toBeLessThan(3_000);
  });

  it('does not suggest lowering copy.timeoutMinutes at the fixed cap of pairs, where it cannot help', () => {
    const targets = Array.from({ length: 1001 }, (_, n) => ({ accountId: String(300000000000 + n), regions: ['eu-west-1'], kmsKey: 'alias/ami-encryption' }));
    for (const copy of [{}, { timeoutMinutes: 10 }]) {
      const error = invalidInputError(() => parseInput(edit((i) => ({ source: i.source, targets, copy }))));
      expect(error.issues).toHaveLength(1);
      expect(error.issues[0]).toContain('1001 account-region pairs are too many for one run (at most 1000 per run, whatever the timeouts');
      expect(error.issues[0]).not.toContain('timeoutMinutes');
    }
  });

  it('reports a misspelt "targets" as unknown and the real one as missing', () => {
    const error = invalidInputError(() => parseInput(edit((i) => ({ source: i.source, target: i.targets }))));
    expect(error.issues).toEqual([
      expect.stringMatching(/^target: is not a known field; remove it/),
      expect.stringMatching(/^targets: is required/),
    ]);
  });

  it('lists every key problem of a target in one error', () => {
    const error = invalidInputError(() =>
      parseInput(
        edit((i) => {
          i.targets[1].kmsKey = {
            'eu-west-1': `arn:aws:kms:eu-west-1:${ACCOUNT_A}:key/11111111-1111-1111-1111-111111111111`,
            'ap-south-1': KEY_B_US,
          };
        }),
      ),
    );
    expect(error.issues).toHaveLength(3);
    expect(error.issues.map((i) => i.slice(0, i.indexOf(': ')))).toEqual([
      'targets[1].kmsKey.us-east-1',
      'targets[1].kmsKey.eu-west-1',
      'targets[1].kmsKey.ap-south-1',
    ]);
  });
});

describe('resolveSource on malformed input', () => {
  const ec2Mock = mockClient(EC2Client);
  const kmsMock = mockClient(KMSClient);
  const ssmMock = mockClient(SSMClient);
  const stsMock = mockClient(STSClient);
  const mocks = [ec2Mock, kmsMock, ssmMock, stsMock];

  beforeEach(() => {
    for (const m of mocks) m.reset();
  });

  function deps() {
    return { clients: testClients(), pipelineRegion: 'eu-west-1', builderAccountId: vi.fn(async () => BUILDER), runsBucket: () => 'runs-bucket', store: memoryRunStore() };
  }

  it.each(rows)('refuses $what before any AWS call', async ({ input }) => {
    const d = deps();
    await expect(resolveSource({ input, executionName: 'x' }, d)).rejects.toMatchObject({ name: 'InvalidInputError' });
    for (const m of mocks) expect(m.calls()).toHaveLength(0);
    expect(d.builderAccountId).not.toHaveBeenCalled();
  });

  it('does call AWS for the valid base input, so the mocks above are listening', async () => {
    ec2Mock.onAnyCommand().rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    await expect(resolveSource({ input: baseInput(), executionName: 'x' }, deps())).rejects.toMatchObject({ name: 'AccessDeniedError' });
    expect(ec2Mock.calls().length).toBeGreaterThan(0);
  });
});
