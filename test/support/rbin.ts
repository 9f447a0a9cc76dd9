/**
 * Recycle Bin's CreateRule for tests (the pipeline only lists rules): POST /rules, HTTP 201, from the Recycle Bin API
 * Reference, on the client functions/shared/rbin-client.ts assembles.
 */
import type { MetadataBearer, StaticListSchema, StaticOperationSchema, StaticStructureSchema } from '@smithy/types';
import { rbinCommand, type RbinResourceType } from '../../functions/shared/rbin-client';

export interface CreateRuleInput {
  ResourceType: RbinResourceType;
  RetentionPeriod: { RetentionPeriodValue: number; RetentionPeriodUnit: 'DAYS' };
  Description?: string;
  ResourceTags?: { ResourceTagKey: string; ResourceTagValue?: string }[];
}
export interface CreateRuleOutput extends MetadataBearer {
  Identifier?: string;
  RuleArn?: string;
  Status?: string;
  ResourceType?: string;
  RetentionPeriod?: { RetentionPeriodValue?: number; RetentionPeriodUnit?: string };
}

const NS = 'com.amazonaws.rbin';
const RetentionPeriod$: StaticStructureSchema = [3, NS, 'RetentionPeriod', 0, ['RetentionPeriodValue', 'RetentionPeriodUnit'], [1, 0]];
const ResourceTag$: StaticStructureSchema = [3, NS, 'ResourceTag', 0, ['ResourceTagKey', 'ResourceTagValue'], [0, 0]];
const ResourceTags: StaticListSchema = [1, NS, 'ResourceTags', 0, () => ResourceTag$];
const Request$: StaticStructureSchema = [3, NS, 'CreateRuleRequest', 0, ['RetentionPeriod', 'ResourceType', 'Description', 'ResourceTags'], [() => RetentionPeriod$, 0, 0, () => ResourceTags], 2];
const Response$: StaticStructureSchema = [3, NS, 'CreateRuleResponse', 0, ['Identifier', 'RetentionPeriod', 'ResourceType', 'Status', 'RuleArn'], [0, () => RetentionPeriod$, 0, 0, 0]];
const CreateRule$: StaticOperationSchema = [9, NS, 'CreateRule', { http: ['POST', '/rules', 201] }, () => Request$, () => Response$];

export class CreateRuleCommand extends rbinCommand<CreateRuleInput, CreateRuleOutput>({}, () => [], 'CreateRule', CreateRule$) {}
