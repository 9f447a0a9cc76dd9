/**
 * IAM values serverless.yml computes from its params (loaded with ${file(serverless-iam.cjs):...}; CommonJS for
 * require()): CloudFormation cannot turn a comma-separated list of role names into role ARNs by itself.
 */

/** The target roles the target-access role may assume: one ARN per name of the param targetRoleNames, any account. */
module.exports.targetRoleArns = async ({ resolveVariable }) => {
  const names = String(await resolveVariable('param:targetRoleNames'))
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const bad = names.filter((n) => !/^[\w+=,.@-]{1,64}$/.test(n));
  if (names.length === 0 || bad.length > 0) {
    throw new Error(`param targetRoleNames must be IAM role names separated by commas, e.g. "AmiPipelineTarget"; got "${names.join(',')}"`);
  }
  return names.map((name) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:iam::*:role/${name}` }));
};
