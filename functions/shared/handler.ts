/** The thin Lambda wrapper every function shares: log context, one line in and out, errors logged and rethrown. */
import type { Context } from 'aws-lambda';
import { logger, withLogContext, type LogContext } from './logger';
import { PipelineError } from './errors';

export function lambdaHandler<R>(
  step: string,
  logContextOf: (event: unknown) => LogContext,
  run: (event: unknown) => Promise<R>,
): (event: unknown, context?: Context) => Promise<R> {
  return (event, context) =>
    withLogContext(logContextOf(event), context, async () => {
      logger.info('Step started', { step });
      try {
        const result = await run(event);
        logger.info('Step finished', { step });
        return result;
      } catch (error) {
        const name = error instanceof Error ? error.name : 'Error';
        const message = error instanceof Error ? error.message : String(error);
        const aws = error instanceof PipelineError ? error.aws : undefined;
        logger.error('Step failed', { step, errorName: name, errorMessage: message, awsCode: aws?.code });
        throw error;
      }
    });
}

/** Read the usual identifying fields of a step's event for the log context. */
export function itemLogContext(event: unknown): LogContext {
  if (typeof event !== 'object' || event === null) return {};
  const e = event as { action?: unknown; item?: { executionName?: unknown; target?: { accountId?: unknown; region?: unknown } } };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    action: str(e.action),
    executionName: str(e.item?.executionName),
    accountId: str(e.item?.target?.accountId),
    region: str(e.item?.target?.region),
  };
}
