/**
 * Amazon Recycle Bin's ListRules (REST-JSON, API version 2021-06-15), as an SDK v3 client assembled from the
 * @aws-sdk/core and @smithy/core every pinned client is built on. npm's @aws-sdk/client-rbin stops at 3.523.0 while
 * our clients are at 3.1164.0; installing it would add a second, older SDK core (docs/lifecycle.md, "Recycle Bin").
 * Assembled like the generated clients, it gets the same behaviour from the same code: the credential chain,
 * SigV4 (signing name rbin), retries, the user agent, and the endpoint from the SDK's standard settings
 * (`endpoint`, AWS_ENDPOINT_URL_RBIN, AWS_ENDPOINT_URL, a profile's endpoint_url), else AWS's
 * `rbin[-fips].{region}.{partition DNS suffix}` (the service's endpoint rules).
 *
 * Shapes from the Recycle Bin API Reference: ListRules (POST /list-rules; ResourceType required: EBS_SNAPSHOT,
 * EC2_IMAGE or EBS_VOLUME; MaxResults 1-1000; NextToken), RuleSummary (Identifier, Description, RetentionPeriod,
 * LockState, RuleArn), RetentionPeriod (RetentionPeriodValue, RetentionPeriodUnit DAYS).
 */
import {
  createDefaultUserAgentProvider,
  getHostHeaderPlugin,
  getLoggerPlugin,
  getRecursionDetectionPlugin,
  getUserAgentPlugin,
  NODE_APP_ID_CONFIG_OPTIONS,
  partition,
  resolveHostHeaderConfig,
  resolveUserAgentConfig,
  NODE_REGION_CONFIG_FILE_OPTIONS,
  NODE_REGION_CONFIG_OPTIONS,
} from '@aws-sdk/core/client';
import { AwsSdkSigV4Signer, NODE_AUTH_SCHEME_PREFERENCE_OPTIONS, resolveAwsSdkSigV4Config } from '@aws-sdk/core/httpAuthSchemes';
import { AwsRestJsonProtocol } from '@aws-sdk/core/protocols';
import { defaultProvider as credentialDefaultProvider } from '@aws-sdk/credential-provider-node';
import { createPaginator, DefaultIdentityProviderConfig, getHttpAuthSchemeEndpointRuleSetPlugin, getHttpSigningPlugin } from '@smithy/core';
import { Sha256 } from '@smithy/core/checksum';
import { Client, getSmithyContext, loadConfigsForDefaultMode, makeBuilder, NoOpLogger, normalizeProvider } from '@smithy/core/client';
import {
  loadConfig,
  NODE_USE_DUALSTACK_ENDPOINT_CONFIG_OPTIONS,
  NODE_USE_FIPS_ENDPOINT_CONFIG_OPTIONS,
  resolveDefaultsModeConfig,
  resolveRegionConfig,
} from '@smithy/core/config';
import { getEndpointPlugin, resolveEndpointConfig } from '@smithy/core/endpoints';
import { getContentLengthPlugin, parseUrl } from '@smithy/core/protocols';
import { DEFAULT_RETRY_MODE, getRetryPlugin, NODE_MAX_ATTEMPT_CONFIG_OPTIONS, NODE_RETRY_MODE_CONFIG_OPTIONS, resolveRetryConfig } from '@smithy/core/retry';
import { getSchemaSerdePlugin, TypeRegistry } from '@smithy/core/schema';
import { calculateBodyLength, fromBase64, fromUtf8, toBase64, toUtf8 } from '@smithy/core/serde';
import { NodeHttpHandler, streamCollector } from '@smithy/node-http-handler';
import type {
  AwsCredentialIdentityProvider,
  EndpointParameterInstructions,
  EndpointV2,
  HandlerExecutionContext,
  HttpAuthOption,
  IdentityProviderConfig,
  MetadataBearer,
  StaticListSchema,
  StaticOperationSchema,
  StaticStructureSchema,
} from '@smithy/types';

export type RbinResourceType = 'EBS_SNAPSHOT' | 'EC2_IMAGE' | 'EBS_VOLUME';

export interface ListRulesInput {
  ResourceType: RbinResourceType;
  MaxResults?: number;
  NextToken?: string;
  LockState?: 'locked' | 'pending_unlock' | 'unlocked';
}

export interface RuleSummary {
  Identifier?: string;
  Description?: string;
  RetentionPeriod?: { RetentionPeriodValue?: number; RetentionPeriodUnit?: string };
  LockState?: string;
  RuleArn?: string;
}

export interface ListRulesOutput extends MetadataBearer {
  Rules?: RuleSummary[];
  NextToken?: string;
}

const NS = 'com.amazonaws.rbin';
const RetentionPeriod$: StaticStructureSchema = [3, NS, 'RetentionPeriod', 0, ['RetentionPeriodValue', 'RetentionPeriodUnit'], [1, 0]];
const RuleSummary$: StaticStructureSchema = [3, NS, 'RuleSummary', 0, ['Identifier', 'Description', 'RetentionPeriod', 'LockState', 'RuleArn'], [0, 0, () => RetentionPeriod$, 0, 0]];
const RuleSummaryList: StaticListSchema = [1, NS, 'RuleSummaryList', 0, () => RuleSummary$];
const ListRulesRequest$: StaticStructureSchema = [3, NS, 'ListRulesRequest', 0, ['ResourceType', 'MaxResults', 'NextToken', 'LockState'], [0, 1, 0, 0], 1];
const ListRulesResponse$: StaticStructureSchema = [3, NS, 'ListRulesResponse', 0, ['Rules', 'NextToken'], [() => RuleSummaryList, 0]];
const ListRules$: StaticOperationSchema = [9, NS, 'ListRules', { http: ['POST', '/list-rules', 200] }, () => ListRulesRequest$, () => ListRulesResponse$];
// No modelled errors: an error answer becomes an Error named by its code (ValidationException, AccessDeniedException, ...).
const errorTypeRegistries = [new TypeRegistry(NS)];

interface EndpointParams {
  Region?: string;
  UseFIPS?: boolean;
  UseDualStack?: boolean;
  Endpoint?: string;
}

/** Recycle Bin's endpoint rules: a configured endpoint as given, else rbin[-fips].{region}.{dnsSuffix or dualStackDnsSuffix}. */
export function rbinEndpoint(params: EndpointParams): EndpointV2 {
  if (params.Endpoint !== undefined) {
    if (params.UseFIPS) throw new Error('Invalid Configuration: FIPS and custom endpoint are not supported');
    if (params.UseDualStack) throw new Error('Invalid Configuration: Dualstack and custom endpoint are not supported');
    return { url: new URL(params.Endpoint) };
  }
  if (!params.Region) throw new Error('Invalid Configuration: Missing Region');
  const p = partition(params.Region);
  if (params.UseFIPS && !p.supportsFIPS) throw new Error('FIPS is enabled but this partition does not support FIPS');
  if (params.UseDualStack && !p.supportsDualStack) throw new Error('DualStack is enabled but this partition does not support DualStack');
  return { url: new URL(`https://rbin${params.UseFIPS ? '-fips' : ''}.${params.Region}.${params.UseDualStack ? p.dualStackDnsSuffix : p.dnsSuffix}`) };
}

const endpointParams: EndpointParameterInstructions = {
  UseFIPS: { type: 'builtInParams', name: 'useFipsEndpoint' },
  Endpoint: { type: 'builtInParams', name: 'endpoint' },
  Region: { type: 'builtInParams', name: 'region' },
  UseDualStack: { type: 'builtInParams', name: 'useDualstackEndpoint' },
};

function sigv4Options(params: { region: string }): HttpAuthOption[] {
  return [{ schemeId: 'aws.auth#sigv4', signingProperties: { name: 'rbin', region: params.region }, propertiesExtractor: (config: unknown, context: unknown) => ({ signingProperties: { config, context } }) }];
}

export interface RbinClientConfig {
  region?: string;
  maxAttempts?: number;
  credentials?: AwsCredentialIdentityProvider;
  /** Overrides the SDK's endpoint settings, as `endpoint` does for every client. */
  endpoint?: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any --
   the config resolvers of @smithy/core are typed for generated clients' config interfaces; this assembles the same chain. */
function runtimeConfig(config: RbinClientConfig): any {
  const defaultsMode = resolveDefaultsModeConfig({});
  const defaults = () => defaultsMode().then(loadConfigsForDefaultMode);
  const logger = new NoOpLogger();
  return {
    apiVersion: '2021-06-15',
    base64Decoder: fromBase64,
    base64Encoder: toBase64,
    disableHostPrefix: false,
    endpointProvider: (params: EndpointParams) => rbinEndpoint(params),
    extensions: [],
    httpAuthSchemeProvider: sigv4Options,
    httpAuthSchemes: [{ schemeId: 'aws.auth#sigv4', identityProvider: (ipc: IdentityProviderConfig) => ipc.getIdentityProvider('aws.auth#sigv4'), signer: new AwsSdkSigV4Signer() }],
    logger,
    protocol: AwsRestJsonProtocol,
    protocolSettings: { defaultNamespace: NS, errorTypeRegistries, version: '2021-06-15', serviceTarget: 'AmazonRecycleBin' },
    serviceId: 'rbin',
    sha256: Sha256,
    urlParser: parseUrl,
    utf8Decoder: fromUtf8,
    utf8Encoder: toUtf8,
    runtime: 'node',
    defaultsMode,
    authSchemePreference: loadConfig(NODE_AUTH_SCHEME_PREFERENCE_OPTIONS, { logger }),
    bodyLengthChecker: calculateBodyLength,
    credentialDefaultProvider,
    defaultUserAgentProvider: createDefaultUserAgentProvider({ serviceId: 'rbin', clientVersion: '0.0.0-ami-pipeline' }),
    maxAttempts: config.maxAttempts ?? loadConfig(NODE_MAX_ATTEMPT_CONFIG_OPTIONS, {}),
    region: config.region ?? loadConfig(NODE_REGION_CONFIG_OPTIONS, { ...NODE_REGION_CONFIG_FILE_OPTIONS, logger }),
    requestHandler: NodeHttpHandler.create(defaults),
    retryMode: loadConfig({ ...NODE_RETRY_MODE_CONFIG_OPTIONS, default: async () => (await defaults()).retryMode ?? DEFAULT_RETRY_MODE }, {}),
    streamCollector,
    useDualstackEndpoint: loadConfig(NODE_USE_DUALSTACK_ENDPOINT_CONFIG_OPTIONS, { logger }),
    useFipsEndpoint: loadConfig(NODE_USE_FIPS_ENDPOINT_CONFIG_OPTIONS, { logger }),
    userAgentAppId: loadConfig(NODE_APP_ID_CONFIG_OPTIONS, { logger }),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
}

export class RbinClient extends Client<any, object, MetadataBearer, any> {
  constructor(config: RbinClientConfig = {}) {
    const initial = runtimeConfig(config);
    super(initial);
    this.initConfig = initial;
    let resolved = Object.assign(initial, { useDualstackEndpoint: initial.useDualstackEndpoint ?? false, useFipsEndpoint: initial.useFipsEndpoint ?? false, defaultSigningName: 'rbin' });
    resolved = resolveUserAgentConfig(resolved);
    resolved = resolveRetryConfig(resolved);
    resolved = resolveRegionConfig(resolved);
    resolved = resolveHostHeaderConfig(resolved);
    resolved = resolveEndpointConfig(resolved);
    resolved = resolveAwsSdkSigV4Config(resolved);
    resolved.authSchemePreference = normalizeProvider(resolved.authSchemePreference ?? []);
    (this as { config: unknown }).config = resolved;
    this.middlewareStack.use(getSchemaSerdePlugin(resolved));
    this.middlewareStack.use(getUserAgentPlugin(resolved));
    this.middlewareStack.use(getRetryPlugin(resolved));
    this.middlewareStack.use(getContentLengthPlugin(resolved));
    this.middlewareStack.use(getHostHeaderPlugin(resolved));
    this.middlewareStack.use(getLoggerPlugin(resolved));
    this.middlewareStack.use(getRecursionDetectionPlugin(resolved));
    this.middlewareStack.use(
      getHttpAuthSchemeEndpointRuleSetPlugin(resolved, {
        httpAuthSchemeParametersProvider: async (cfg: any, context: HandlerExecutionContext) => ({
          operation: getSmithyContext(context).operation as string,
          region: await normalizeProvider(cfg.region)(),
        }),
        identityProviderConfigProvider: async (cfg: any) => new DefaultIdentityProviderConfig({ 'aws.auth#sigv4': cfg.credentials }),
      }),
    );
    this.middlewareStack.use(getHttpSigningPlugin(resolved));
  }
}

/** Builds a command class of this client from an operation schema (ListRules here; the tests add CreateRule). */
export const rbinCommand = makeBuilder<any, object, MetadataBearer>(endpointParams, 'AmazonRecycleBin', 'RbinClient', getEndpointPlugin);
/* eslint-enable @typescript-eslint/no-explicit-any */

export class ListRulesCommand extends rbinCommand<ListRulesInput, ListRulesOutput>({}, () => [], 'ListRules', ListRules$) {}

export const paginateListRules = createPaginator<{ client: RbinClient; pageSize?: number; startingToken?: string }, ListRulesInput, ListRulesOutput>(
  RbinClient,
  ListRulesCommand,
  'NextToken',
  'NextToken',
  'MaxResults',
);
