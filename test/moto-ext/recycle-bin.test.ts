/**
 * local/moto_ext/recycle_bin.py: Recycle Bin's CreateRule and ListRules as the API Reference documents them, called
 * through functions/shared/rbin-client.ts, which also shows that client finding its endpoint the SDK's standard way
 * (AWS_ENDPOINT_URL_RBIN); then the doctor's check over it, through a target account's role.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Moto } from '../../local/moto';
import { recycleBinCheck } from '../../cli/recycle-bin';
import { createClientFactory } from '../../functions/shared/clients';
import { ListRulesCommand, paginateListRules, RbinClient } from '../../functions/shared/rbin-client';
import { item } from '../support/fixtures';
import { MOTO_AVAILABLE, uniqueAccount, useMoto } from '../support/moto';
import { CreateRuleCommand } from '../support/rbin';

const REGION = 'eu-west-1';
const days = (n: number) => ({ RetentionPeriodValue: n, RetentionPeriodUnit: 'DAYS' as const });

describe.skipIf(!MOTO_AVAILABLE)('the Recycle Bin extension of moto', () => {
  let moto: Moto;
  let rbin: RbinClient;
  const saved = { url: process.env.AWS_ENDPOINT_URL, rbin: process.env.AWS_ENDPOINT_URL_RBIN };

  beforeAll(async () => {
    moto = await useMoto();
    // Only the service's own variable: the client must find moto through it.
    delete process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL_RBIN = moto.endpoint;
    rbin = new RbinClient({ region: REGION, credentials: async () => ({ accessKeyId: 'testing', secretAccessKey: 'testing' }) });
  }, 60_000);
  afterAll(async () => {
    for (const [name, value] of [['AWS_ENDPOINT_URL', saved.url], ['AWS_ENDPOINT_URL_RBIN', saved.rbin]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await moto?.stop();
  });

  it('creates a rule (HTTP 201) with an 11-character Identifier and a rule ARN, and lists it by resource type only', async () => {
    const created = await rbin.send(new CreateRuleCommand({ ResourceType: 'EC2_IMAGE', RetentionPeriod: days(14), Description: 'AMIs' }));
    expect(created.$metadata.httpStatusCode).toBe(201);
    expect(created.Identifier).toMatch(/^[0-9a-zA-Z]{11}$/);
    expect(created.RuleArn).toBe(`arn:aws:rbin:${REGION}:123456789012:rule/${created.Identifier ?? ''}`);
    const images = await rbin.send(new ListRulesCommand({ ResourceType: 'EC2_IMAGE' }));
    expect(images.Rules).toContainEqual({ Identifier: created.Identifier, Description: 'AMIs', RetentionPeriod: days(14), RuleArn: created.RuleArn });
    const volumes = await rbin.send(new ListRulesCommand({ ResourceType: 'EBS_VOLUME' }));
    expect(volumes.Rules).toEqual([]);
  });

  it('pages with MaxResults and NextToken, which the paginator follows', async () => {
    for (const n of [1, 2, 3]) await rbin.send(new CreateRuleCommand({ ResourceType: 'EBS_SNAPSHOT', RetentionPeriod: days(n) }));
    const pages = [];
    for await (const page of paginateListRules({ client: rbin, pageSize: 2 }, { ResourceType: 'EBS_SNAPSHOT' })) pages.push(page.Rules?.length);
    expect(pages).toEqual([2, 1]);
  });

  it('lists tag-level rules by the ResourceTags they carry', async () => {
    const tagged = await rbin.send(
      new CreateRuleCommand({ ResourceType: 'EC2_IMAGE', RetentionPeriod: days(7), ResourceTags: [{ ResourceTagKey: 'ami-pipeline:lineage', ResourceTagValue: 'web' }] }),
    );
    // The pipeline's client never filters by tags; a raw ListRules request (moto routes by the credential scope).
    const list = async (body: unknown) => {
      const response = await fetch(`${moto.endpoint}/list-rules`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `AWS4-HMAC-SHA256 Credential=testing/20261130/${REGION}/rbin/aws4_request, SignedHeaders=host, Signature=0` },
        body: JSON.stringify(body),
      });
      return ((await response.json()) as { Rules: { Identifier: string }[] }).Rules.map((r) => r.Identifier);
    };
    expect(await list({ ResourceType: 'EC2_IMAGE', ResourceTags: [{ ResourceTagKey: 'ami-pipeline:lineage', ResourceTagValue: 'web' }] })).toEqual([tagged.Identifier]);
    expect(await list({ ResourceType: 'EC2_IMAGE', ResourceTags: [{ ResourceTagKey: 'ami-pipeline:lineage', ResourceTagValue: 'db' }] })).toEqual([]);
    expect(await list({ ResourceType: 'EC2_IMAGE' })).toContain(tagged.Identifier);
  });

  it('refuses a missing or unknown ResourceType and an out-of-range retention period (ValidationException, HTTP 400)', async () => {
    const refused = async (send: () => Promise<unknown>) => send().then(() => undefined, (e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number } });
    const unknownType = await refused(() => rbin.send(new ListRulesCommand({ ResourceType: 'EBS_IMAGE' as 'EC2_IMAGE' })));
    expect([unknownType?.name, unknownType?.$metadata?.httpStatusCode]).toEqual(['ValidationException', 400]);
    const tooLong = await refused(() => rbin.send(new CreateRuleCommand({ ResourceType: 'EC2_IMAGE', RetentionPeriod: days(3651) })));
    expect(tooLong?.name).toBe('ValidationException');
  });

  it("gives the doctor's check a warning in a region without rules, and a pass with the rules' details once AMIs and snapshots are kept", async () => {
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
    try {
      const account = uniqueAccount('43');
      const target = createClientFactory(REGION).target({ accountId: account, roleName: 'AmiPipelineTarget', sessionName: 'doctor' });
      const none = await recycleBinCheck(item({ accountId: account }), target);
      expect(none).toMatchObject({ scope: `${account}/${REGION}`, check: 'recycle-bin', verdict: 'warn' });
      expect(none.message).toContain('no Recycle Bin retention rule for AMIs');
      await target.rbin(REGION).send(new CreateRuleCommand({ ResourceType: 'EC2_IMAGE', RetentionPeriod: days(10), Description: 'retired AMIs' }));
      await target.rbin(REGION).send(new CreateRuleCommand({ ResourceType: 'EBS_SNAPSHOT', RetentionPeriod: days(10) }));
      const kept = await recycleBinCheck(item({ accountId: account }), target);
      expect(kept.verdict).toBe('pass');
      expect(kept.message).toMatch(/AMI rule\(s\) [0-9a-zA-Z]{11} \(10 days: retired AMIs\)/);
      expect(kept.message).toContain('restored from the Recycle Bin for up to 10 day(s)');
    } finally {
      delete process.env.AWS_ENDPOINT_URL;
    }
  });
});
