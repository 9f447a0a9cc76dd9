/**
 * Running the functions' own code inside the CLI (doctor, cleanup, the cleanup after an interrupt): the SDK pointed
 * at --endpoint-url when one is given, and the functions' logger silent so that its lines stay out of the report on
 * stdout; both are put back afterwards.
 */
import { rootLogger } from '../functions/shared/logger';

export async function inFunctionsEnvironment<T>(endpointUrl: string | undefined, work: () => Promise<T>): Promise<T> {
  const saved = process.env.AWS_ENDPOINT_URL;
  const logLevel = rootLogger.getLevelName();
  rootLogger.setLogLevel('SILENT');
  if (endpointUrl) process.env.AWS_ENDPOINT_URL = endpointUrl;
  try {
    return await work();
  } finally {
    rootLogger.setLogLevel(logLevel);
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
  }
}

/** Where a command acts: --region, else AWS_REGION, else the region of the input's source, else us-east-1. */
export function commandRegion(option: string | undefined, sourceRegion: string | undefined): string {
  return option ?? process.env.AWS_REGION ?? sourceRegion ?? 'us-east-1';
}
