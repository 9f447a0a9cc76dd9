/**
 * One Powertools logger for every function. Each invocation runs with a child logger that carries the execution
 * name, and the account and region it works in, so every line of a run can be found and filtered. The child is
 * kept in AsyncLocalStorage: invocations that share a process (the local runner, tests) never mix their keys.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

export const rootLogger = new Logger({ serviceName: 'encrypted-ami-pipeline' });
const current = new AsyncLocalStorage<Logger>();

type Extra = Record<string, unknown>;
const active = (): Logger => current.getStore() ?? rootLogger;

/** The logger the code calls: the invocation's child when there is one. */
export const logger = {
  debug: (message: string, extra: Extra = {}) => active().debug(message, extra),
  info: (message: string, extra: Extra = {}) => active().info(message, extra),
  warn: (message: string, extra: Extra = {}) => active().warn(message, extra),
  error: (message: string, extra: Extra = {}) => active().error(message, extra),
};

export interface LogContext {
  executionName?: string | undefined;
  accountId?: string | undefined;
  region?: string | undefined;
  action?: string | undefined;
}

/** Run `fn` with a child logger carrying `context` (and the Lambda context, when given). */
export function withLogContext<T>(context: LogContext, lambdaContext: Context | undefined, fn: () => Promise<T>): Promise<T> {
  const child = rootLogger.createChild();
  const keys: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) if (typeof v === 'string') keys[k] = v;
  child.appendKeys(keys);
  if (lambdaContext) child.addContext(lambdaContext);
  return current.run(child, fn);
}
