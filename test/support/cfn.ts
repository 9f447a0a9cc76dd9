/**
 * Reading CloudFormation templates (short-form tags included) and checking them against the CloudFormation
 * resource specification (@aws-cdk/aws-service-spec): resource types, property names, required properties,
 * Ref / GetAtt / Sub targets and condition names.
 */
import { readFileSync } from 'node:fs';
import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';
import { parse, type Tags } from 'yaml';

export type Template = {
  Parameters?: Record<string, unknown>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Condition?: string; Properties?: Record<string, unknown> }>;
  Outputs?: Record<string, { Value: unknown; Condition?: string }>;
};

const fn = (name: string, split?: (v: string) => unknown) => [
  { tag: `!${name}`, resolve: (v: string) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: split ? split(v) : v }) },
  { tag: `!${name}`, collection: 'seq' as const, resolve: (v: { toJSON(): unknown }) => ({ [`Fn::${name}`]: v.toJSON() }) },
];
const CFN_TAGS = [
  ...fn('Ref'),
  ...fn('Sub'),
  ...fn('GetAtt', (v) => v.split('.')),
  ...fn('If'),
  ...fn('Equals'),
  ...fn('Not'),
  ...fn('And'),
  ...fn('Or'),
  ...fn('Join'),
  ...fn('Select'),
  ...fn('Split'),
] as unknown as Tags;

export function loadTemplate(path: URL): Template {
  return parse(readFileSync(path, 'utf8'), { customTags: CFN_TAGS }) as Template;
}

const PSEUDO = new Set(['AWS::AccountId', 'AWS::Region', 'AWS::Partition', 'AWS::StackName', 'AWS::StackId', 'AWS::URLSuffix', 'AWS::NoValue', 'AWS::NotificationARNs']);

function walk(value: unknown, visit: (key: string, v: unknown) => void): void {
  if (Array.isArray(value)) value.forEach((v) => walk(v, visit));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      visit(k, v);
      walk(v, visit);
    }
  }
}

/** Every problem found, as "Resource.Property: what is wrong"; empty when the template checks out. */
export async function checkTemplate(template: Template): Promise<string[]> {
  const db = await loadAwsServiceSpec();
  const problems: string[] = [];
  const params = new Set(Object.keys(template.Parameters ?? {}));
  const resources = template.Resources;
  const conditions = new Set(Object.keys(template.Conditions ?? {}));
  const attributesOf = new Map<string, Set<string>>();

  for (const [id, resource] of Object.entries(resources)) {
    const spec = db.lookup('resource', 'cloudFormationType', 'equals', resource.Type);
    if (spec.length !== 1) {
      problems.push(`${id}: unknown resource type ${resource.Type}`);
      continue;
    }
    const [definition] = spec;
    if (!definition) continue;
    attributesOf.set(id, new Set(Object.keys(definition.attributes)));
    const props = resource.Properties ?? {};
    for (const name of Object.keys(props)) {
      if (!(name in definition.properties)) problems.push(`${id}.${name}: not a property of ${resource.Type}`);
    }
    for (const [name, property] of Object.entries(definition.properties)) {
      if (property.required && !(name in props)) problems.push(`${id}.${name}: required by ${resource.Type} but missing`);
    }
    if (resource.Condition && !conditions.has(resource.Condition)) problems.push(`${id}: unknown condition ${resource.Condition}`);
  }

  const checkRef = (where: string, name: string) => {
    if (!params.has(name) && !(name in resources) && !PSEUDO.has(name)) problems.push(`${where}: Ref to unknown ${name}`);
  };
  const checkGetAtt = (where: string, id: string, attribute: string) => {
    const attributes = attributesOf.get(id);
    if (!attributes) problems.push(`${where}: GetAtt of unknown resource ${id}`);
    else if (!attributes.has(attribute)) problems.push(`${where}: ${id} has no attribute ${attribute}`);
  };
  const sections: [string, unknown][] = [
    ...Object.entries(resources).map(([id, r]) => [id, r] as [string, unknown]),
    ...Object.entries(template.Outputs ?? {}).map(([id, o]) => [`Outputs.${id}`, o] as [string, unknown]),
    ['Conditions', template.Conditions ?? {}],
  ];
  for (const [where, section] of sections) {
    walk(section, (key, v) => {
      if (key === 'Ref' && typeof v === 'string') checkRef(where, v);
      if (key === 'Fn::GetAtt' && Array.isArray(v)) checkGetAtt(where, String(v[0]), String(v[1]));
      if (key === 'Fn::If' && Array.isArray(v) && !conditions.has(String(v[0]))) problems.push(`${where}: Fn::If on unknown condition ${String(v[0])}`);
      if (key === 'Fn::Sub' && typeof v === 'string') {
        for (const m of v.matchAll(/\$\{([^}!]+)\}/g)) {
          const [name, attribute] = (m[1] ?? '').split('.');
          if (attribute) checkGetAtt(where, name ?? '', attribute);
          else checkRef(where, name ?? '');
        }
      }
    });
  }
  for (const [id, output] of Object.entries(template.Outputs ?? {})) {
    if (output.Condition && !conditions.has(output.Condition)) problems.push(`Outputs.${id}: unknown condition ${output.Condition}`);
  }
  return problems;
}

/** What `render` resolves names against: parameters and pseudo parameters, and how a resource's Ref / GetAtt reads. */
export interface RenderContext {
  accountId: string;
  region: string;
  partition?: string;
  parameters?: Record<string, string>;
  /** A resource's physical value: `attribute` undefined for Ref. */
  resource?: (logicalId: string, attribute?: string) => string;
}

const NO_VALUE = Symbol('AWS::NoValue');

/**
 * A template value with its intrinsic functions resolved (Ref, Fn::Sub, Fn::Join, Fn::GetAtt, Fn::If and the
 * condition functions) as CloudFormation would for these parameters; `AWS::NoValue` removes the property.
 */
export function render(value: unknown, template: Pick<Template, 'Parameters' | 'Conditions'>, ctx: RenderContext): unknown {
  const params = (): Record<string, string> => {
    const defaults = Object.fromEntries(
      Object.entries(template.Parameters ?? {}).map(([k, p]) => [k, String((p as { Default?: unknown }).Default ?? '')]),
    );
    return {
      ...defaults,
      ...ctx.parameters,
      'AWS::AccountId': ctx.accountId,
      'AWS::Region': ctx.region,
      'AWS::Partition': ctx.partition ?? 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
    };
  };
  const ref = (name: string): unknown => {
    const p = params();
    const type = (template.Parameters?.[name] as { Type?: string } | undefined)?.Type;
    if (type === 'CommaDelimitedList') return (p[name] ?? '') === '' ? [] : (p[name] ?? '').split(',');
    if (name in p) return p[name] ?? '';
    if (!ctx.resource) throw new Error(`render: Ref to ${name} without a resource resolver`);
    return ctx.resource(name);
  };
  const sub = (text: string, vars: Record<string, string>) =>
    text.replace(/\$\{([^}!]+)\}/g, (_m, name: string) => {
      if (name in vars) return vars[name] ?? '';
      const [id, attribute] = name.split('.');
      if (attribute) return ctx.resource?.(id ?? '', attribute) ?? '';
      return String(ref(name));
    });
  const condition = (name: string): boolean => {
    const c = (template.Conditions ?? {})[name];
    if (c === undefined) throw new Error(`render: unknown condition ${name}`);
    return Boolean(walkValue(c));
  };
  const walkValue = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walkValue).filter((x) => x !== NO_VALUE);
    if (!v || typeof v !== 'object') return v;
    const entries = Object.entries(v);
    if (entries.length === 1) {
      const [[key, arg]] = entries as [[string, unknown]];
      if (key === 'Ref') return arg === 'AWS::NoValue' ? NO_VALUE : ref(String(arg));
      if (key === 'Fn::Sub') {
        if (typeof arg === 'string') return sub(arg, {});
        const [text, vars] = arg as [string, Record<string, unknown>];
        return sub(text, Object.fromEntries(Object.entries(vars).map(([k, x]) => [k, String(walkValue(x))])));
      }
      if (key === 'Fn::Join') {
        const [sep, parts] = arg as [string, unknown[]];
        return (walkValue(parts) as unknown[]).map(String).join(sep);
      }
      if (key === 'Fn::GetAtt') {
        const [id, attribute] = (typeof arg === 'string' ? arg.split('.') : arg) as [string, string];
        if (!ctx.resource) throw new Error(`render: GetAtt ${id}.${attribute} without a resource resolver`);
        return ctx.resource(id, attribute);
      }
      if (key === 'Fn::If') {
        const [name, yes, no] = arg as [string, unknown, unknown];
        return walkValue(condition(name) ? yes : no);
      }
      if (key === 'Fn::Equals') {
        const [a, b] = walkValue(arg) as [unknown, unknown];
        return String(a) === String(b);
      }
      if (key === 'Fn::Not') return !(walkValue(arg) as unknown[])[0];
      if (key === 'Fn::And') return (walkValue(arg) as unknown[]).every(Boolean);
      if (key === 'Fn::Or') return (walkValue(arg) as unknown[]).some(Boolean);
      if (key === 'Condition' && typeof arg === 'string' && template.Conditions && arg in template.Conditions) return condition(arg);
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of entries) {
      const r = walkValue(x);
      if (r !== NO_VALUE) out[k] = r;
    }
    return out;
  };
  return walkValue(value);
}

/** Whether a resource's Condition holds for these parameters (true when it has none). */
export function created(template: Template, logicalId: string, ctx: RenderContext): boolean {
  const name = template.Resources[logicalId]?.Condition;
  return name === undefined || Boolean(render({ 'Fn::If': [name, true, false] }, template, ctx));
}
