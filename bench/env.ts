/**
 * The benchmark process's environment, set before anything reads it (import this first): the SDK's region and
 * (dummy) credentials for the mocked clients, silent function logs, and no SDK-level retries, so that throttling
 * is retried by the state machine as deployed Lambdas would see it once the SDK gives up.
 */
const defaults: Record<string, string> = {
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_MAX_ATTEMPTS: '1',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
for (const [key, value] of Object.entries(defaults)) process.env[key] ??= value;
