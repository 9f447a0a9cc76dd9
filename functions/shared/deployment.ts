/**
 * What a deployment allows that the input could ask beyond: the target role names the target-access role may
 * assume (serverless.yml param targetRoleNames) and the SSM prefix target roles may write under (the target
 * template's ParameterPrefix, serverless.yml param publishParameterPrefix). ResolveSource refuses an input
 * outside them before any AWS call, with the fix, instead of failing later as "role not assumable" or AccessDenied.
 */
import type { PipelineInput } from './input';

export interface DeploymentLimits {
  /** Role names the pipeline may assume in target accounts; empty: not known (no check). */
  targetRoleNames: string[];
  /** Prefix of the SSM parameters the pipeline may write in target accounts; empty: not known (no check). */
  publishParameterPrefix: string;
}

export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): DeploymentLimits {
  return {
    targetRoleNames: (env.TARGET_ROLE_NAMES ?? '').split(',').map((n) => n.trim()).filter(Boolean),
    publishParameterPrefix: env.PUBLISH_PARAMETER_PREFIX ?? '',
  };
}

/** The problems of an input against the deployment, each naming the field and the fix. */
export function deploymentIssues(input: PipelineInput, limits: DeploymentLimits): string[] {
  const issues: string[] = [];
  const names = limits.targetRoleNames;
  if (names.length > 0 && !names.includes(input.targetRoleName)) {
    issues.push(
      `targetRoleName: "${input.targetRoleName}" is not a role this deployment may assume (allowed: ${names.join(', ')}); ` +
        `use one of them, or redeploy with --param="targetRoleNames=${[...names, input.targetRoleName].join(',')}"`,
    );
  }
  const prefix = limits.publishParameterPrefix;
  const parameter = input.publish.parameterName;
  if (prefix && parameter !== undefined && !parameter.startsWith(prefix)) {
    issues.push(
      `publish.parameterName: "${parameter}" is outside "${prefix}", the only parameters the target role may write; ` +
        `use a name under ${prefix}, or deploy templates/target-account.yml with ParameterPrefix and the pipeline with --param="publishParameterPrefix=..." set to a prefix of it`,
    );
  }
  return issues;
}
