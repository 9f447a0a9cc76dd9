/**
 * What a run reports, checked against the schemas published in schema/ (functions/shared/manifest-schema.ts): the
 * manifest, the summary (the execution's output or RunFailedError's cause) and the completion events. A field the
 * schema does not declare fails the check too (zod drops it, so the parsed value differs from what was written).
 */
import { assert, expect } from 'vitest';
import type * as z from 'zod';
import {
  completionDetailSchema,
  manifestSchema,
  runSummarySchema,
  schemaIssues,
  type CompletionDetail,
  type Manifest,
  type RunSummary,
} from '../../functions/shared/manifest-schema';
import type { RunResult } from '../../local/asl';
import { runFailureSummary } from '../../functions/shared/run-failure';

/** `value` as `schema` declares it, or a failed expectation naming the fields that differ. */
export function conforms<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) assert.fail(`${what} does not match its schema: ${schemaIssues(parsed.error, 10).join('; ')}`);
  expect(parsed.data, `${what} carries a field its schema does not declare`).toEqual(value);
  return parsed.data;
}

/** The run's summary: its output, or the cause of RunFailedError. */
export function summaryOf(run: Pick<RunResult, 'output' | 'error'>): RunSummary {
  if (run.output !== undefined) return conforms(runSummarySchema, run.output, 'the execution output');
  expect(run.error?.name).toBe('RunFailedError');
  // FailRun's Lambda error: the summary is its errorMessage.
  return conforms(runSummarySchema, runFailureSummary(run.error?.cause), "RunFailedError's cause");
}

/** The run's manifest (from the runs bucket); its summary too when the run ended with one. */
export function manifestOf(run: Pick<RunResult, 'output' | 'error' | 'manifest'>): Manifest {
  if (run.output !== undefined || run.error?.name === 'RunFailedError') summaryOf(run);
  return conforms(manifestSchema, run.manifest, 'the manifest');
}

/** The completion events put on the bus (EventBridge entries), each detail checked. */
export function completionDetails(events: readonly { Detail?: string }[]): CompletionDetail[] {
  return events.map((e, n) => conforms(completionDetailSchema, JSON.parse(e.Detail ?? 'null'), `completion event ${n}`));
}

/** The completion events' details, each the run's whole summary (none trimmed past EventBridge's 256 KB). */
export function eventSummaries(events: readonly { Detail?: string }[]): RunSummary[] {
  return events.map((e, n) => conforms(runSummarySchema, JSON.parse(e.Detail ?? 'null'), `completion event ${n}`));
}

/** For afterEach: the completion events the test's runs put are checked, then the in-memory AWS goes away whatever they hold. */
export function checkEventsAndRestore(aws: { readonly events: readonly { Detail?: string }[]; restore(): void }): void {
  try {
    completionDetails(aws.events);
  } finally {
    aws.restore();
  }
}
