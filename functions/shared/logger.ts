/**
 * One Powertools logger for every function. Each invocation appends the execution name,
 * and the account and region it works in, so every line of a run can be found and filtered.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: 'encrypted-ami-pipeline' });

export interface LogContext {
  executionName?: string | undefined;
  accountId?: string | undefined;
  region?: string | undefined;
  action?: string | undefined;
}

export function setLogContext(context: LogContext): void {
  logger.resetKeys();
  const keys: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) if (typeof v === 'string') keys[k] = v;
  logger.appendKeys(keys);
}
