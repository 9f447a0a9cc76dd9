import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { recycleBinCheck } from '../../cli/recycle-bin';
import { ListRulesCommand, RbinClient, rbinEndpoint, type RuleSummary } from '../../functions/shared/rbin-client';
import { ACCOUNT_A, awsError, item, testClients } from '../support/fixtures';

const rbinMock = mockClient(RbinClient);
const clients = () => testClients().target({ accountId: ACCOUNT_A, roleName: 'AmiPipelineTarget', sessionName: 'doctor' });
const rule = (id: string, days: number, extra: Partial<RuleSummary> = {}): RuleSummary => ({
  Identifier: id, RetentionPeriod: { RetentionPeriodValue: days, RetentionPeriodUnit: 'DAYS' }, RuleArn: `arn:aws:rbin:eu-west-1:${ACCOUNT_A}:rule/${id}`, ...extra,
});
const rules = (images: RuleSummary[], snapshots: RuleSummary[]) => {
  rbinMock.on(ListRulesCommand, { ResourceType: 'EC2_IMAGE' }).resolves({ Rules: images });
  rbinMock.on(ListRulesCommand, { ResourceType: 'EBS_SNAPSHOT' }).resolves({ Rules: snapshots });
};

beforeEach(() => rbinMock.reset());

describe("the doctor's Recycle Bin check", () => {
  it('passes with the rules, their periods and lock state when AMIs and their snapshots are kept as long', async () => {
    rules([rule('a1b2c3d4e5f', 14, { LockState: 'locked', Description: 'retired AMIs' })], [rule('s1b2c3d4e5f', 21)]);
    const check = await recycleBinCheck(item(), clients());
    expect(check).toMatchObject({ scope: `${ACCOUNT_A}/eu-west-1`, check: 'recycle-bin', verdict: 'pass' });
    expect(check.message).toContain('AMI rule(s) a1b2c3d4e5f (14 days, locked: retired AMIs); snapshot rule(s) s1b2c3d4e5f (21 days)');
    expect(check.message).toContain('for up to 14 day(s), its snapshots billed at the standard rate');
  });

  it('reads every page of rules (NextToken)', async () => {
    rbinMock
      .on(ListRulesCommand, { ResourceType: 'EC2_IMAGE' }).resolves({ Rules: [rule('a0000000001', 7)], NextToken: 'page-2' })
      .on(ListRulesCommand, { ResourceType: 'EC2_IMAGE', NextToken: 'page-2' }).resolves({ Rules: [rule('a0000000002', 30)] })
      .on(ListRulesCommand, { ResourceType: 'EBS_SNAPSHOT' }).resolves({ Rules: [rule('s0000000001', 30)] });
    const check = await recycleBinCheck(item(), clients());
    expect(check.message).toContain('a0000000001 (7 days), a0000000002 (30 days)');
    expect(check.message).toContain('up to 30 day(s)');
  });

  it('warns without an AMI rule: a deregistered copy is gone, restore works only in the grace period; the fix creates both rules', async () => {
    rules([], []);
    const check = await recycleBinCheck(item(), clients());
    expect(check.verdict).toBe('warn');
    expect(check.message).toContain('no Recycle Bin retention rule for AMIs: a copy retention deregisters is gone for good');
    expect(check.message).toContain('only while it is disabled, 7 day(s) (retention.graceDays)');
    expect(check.fix).toContain('aws rbin create-rule --region eu-west-1 --resource-type EC2_IMAGE');
  });

  it('warns when AMIs are kept longer than their snapshots, which makes them unrestorable', async () => {
    rules([rule('a1b2c3d4e5f', 14)], [rule('s1b2c3d4e5f', 7)]);
    const check = await recycleBinCheck(item(), clients());
    expect(check.verdict).toBe('warn');
    expect(check.message).toContain('the snapshot rules keep snapshots only 7 day(s): an AMI whose snapshots left the bin cannot be restored');
    expect(check.fix).toContain('--resource-type EBS_SNAPSHOT --retention-period RetentionPeriodValue=14');
  });

  it('says "not checked" with the permission to add when the role may not list the rules', async () => {
    rbinMock.on(ListRulesCommand).rejects(
      awsError('AccessDeniedException', `User: arn:aws:sts::${ACCOUNT_A}:assumed-role/AmiPipelineTarget/doctor is not authorized to perform: rbin:ListRules because no identity-based policy allows the rbin:ListRules action`, 403),
    );
    const check = await recycleBinCheck(item(), clients());
    expect(check).toMatchObject({ verdict: 'warn', message: expect.stringContaining('not checked') as unknown });
    expect(check.awsError).toMatch(/^AccessDeniedException: User: .* rbin:ListRules/);
    expect(check.fix).toContain('rbin:ListRules');
  });
});

describe("the Recycle Bin client's endpoint rules", () => {
  it('calls rbin.<region>.<DNS suffix of the partition>, its FIPS and dual-stack forms, or the configured endpoint', () => {
    expect(rbinEndpoint({ Region: 'eu-west-1' }).url.href).toBe('https://rbin.eu-west-1.amazonaws.com/');
    expect(rbinEndpoint({ Region: 'cn-north-1' }).url.href).toBe('https://rbin.cn-north-1.amazonaws.com.cn/');
    expect(rbinEndpoint({ Region: 'us-gov-west-1', UseFIPS: true }).url.href).toBe('https://rbin-fips.us-gov-west-1.amazonaws.com/');
    expect(rbinEndpoint({ Region: 'eu-west-1', UseDualStack: true }).url.href).toBe('https://rbin.eu-west-1.api.aws/');
    expect(rbinEndpoint({ Region: 'eu-west-1', Endpoint: 'http://127.0.0.1:5000' }).url.href).toBe('http://127.0.0.1:5000/');
    expect(() => rbinEndpoint({ Region: 'eu-west-1', Endpoint: 'http://127.0.0.1:5000', UseFIPS: true })).toThrow('FIPS and custom endpoint');
    expect(() => rbinEndpoint({})).toThrow('Missing Region');
  });
});
