/**
 * EventBridge's event matching and input transformation, as far as our rules use them, for tests that feed recorded
 * events through the rules we ship: a pattern field's array matches when the event's value (or any element of an
 * event array) equals one of its values; nested objects match field by field; `{ "exists": false }` matches an
 * absent field (EventBridge User Guide, "Event patterns" and "Content filtering"). An input transformer's paths are
 * plain `$.a.b` paths and each `<name>` outside quotes becomes the value as JSON ("Input transformation").
 * Anything else in a pattern throws, so a rule using more of the language fails its test instead of passing by accident.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type Pattern = { [field: string]: unknown[] | Pattern };

function valueMatches(allowed: unknown[], value: unknown, present: boolean): boolean {
  return allowed.some((a) => {
    if (a !== null && typeof a === 'object') {
      const rule = a as Record<string, unknown>;
      if (Object.keys(rule).length === 1 && typeof rule.exists === 'boolean') return rule.exists === present;
      throw new Error(`content filter ${JSON.stringify(a)} is not modelled by test/support/event-pattern.ts`);
    }
    if (!present) return false;
    return Array.isArray(value) ? value.some((v) => v === a) : value === a;
  });
}

export function matches(pattern: Pattern, event: unknown): boolean {
  const record = (event ?? {}) as Record<string, unknown>;
  return Object.entries(pattern).every(([field, rule]) => {
    const present = typeof event === 'object' && event !== null && field in record && record[field] !== undefined;
    if (Array.isArray(rule)) return valueMatches(rule, record[field], present && record[field] !== null);
    return present && typeof record[field] === 'object' && matches(rule, record[field]);
  });
}

function valueAt(event: unknown, path: string): unknown {
  if (!path.startsWith('$.')) throw new Error(`input path ${path} is not modelled`);
  return path.slice(2).split('.').reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], event);
}

/** The rule's input for `event`: the template with each `<name>` replaced by its path's value as JSON. */
export function transform(transformer: { inputPathsMap: Record<string, string>; inputTemplate: string }, event: unknown): unknown {
  let text = transformer.inputTemplate;
  for (const [name, path] of Object.entries(transformer.inputPathsMap)) {
    text = text.split(`<${name}>`).join(JSON.stringify(valueAt(event, path) ?? null));
  }
  return JSON.parse(text) as unknown;
}

export interface ShippedRule {
  name: string;
  pattern: Pattern;
  inputTransformer?: { inputPathsMap: Record<string, string>; inputTemplate: string };
}

/**
 * The eventBridge rules of serverless.yml that start runs: the pipeline state machine's (with their input transformers)
 * and the starter function's (functions/start-execution.ts gets the event itself), with ${param:...} and the other
 * variables set to their defaults (the stage "prod", the region "eu-west-1"), as `serverless package` resolves them.
 */
export function pipelineRules(): ShippedRule[] {
  const text = readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8');
  const doc = parse(text) as {
    params: { default: Record<string, string> };
    functions: Record<string, { events?: { eventBridge?: { name: string; pattern: Pattern } }[] }>;
    stepFunctions: { stateMachines: { pipeline: { events: { eventBridge?: { name: string; event: Pattern; inputTransformer?: ShippedRule['inputTransformer'] } }[] } } };
  };
  const params = doc.params.default;
  const resolve = (s: string) =>
    s.replace(/\$\{param:(\w+)\}/g, (_, p: string) => params[p] ?? '').replace(/\$\{aws:region\}/g, 'eu-west-1').replace(/\$\{sls:stage\}/g, 'prod');
  const machine = doc.stepFunctions.stateMachines.pipeline.events.flatMap((e) =>
    e.eventBridge
      ? [{
          name: resolve(e.eventBridge.name),
          pattern: e.eventBridge.event,
          ...(e.eventBridge.inputTransformer
            ? { inputTransformer: { inputPathsMap: e.eventBridge.inputTransformer.inputPathsMap, inputTemplate: resolve(e.eventBridge.inputTransformer.inputTemplate) } }
            : {}),
        }]
      : [],
  );
  const starter = (doc.functions.startExecution?.events ?? []).flatMap((e) => (e.eventBridge ? [{ name: resolve(e.eventBridge.name), pattern: e.eventBridge.pattern }] : []));
  return [...machine, ...starter];
}
