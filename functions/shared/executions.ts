/**
 * Is an execution still running? Asked of Step Functions (states:DescribeExecution) before the share ledger or a
 * cleanup removes what an execution made. RUNNING and PENDING_REDRIVE count as running; an execution Step Functions
 * does not know (ExecutionDoesNotExist: deleted, or a local run's) counts as ended; any other error leaves the answer
 * unknown, and what an unknown execution made is kept.
 */
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { aws, awsCode } from './errors';

export interface ExecutionState {
  /** null: could not tell. */
  running: boolean | null;
  /** Step Functions' status, DOES_NOT_EXIST, or the error code that left it unknown. */
  status: string;
}

export type Liveness = (executionArn: string) => Promise<ExecutionState>;

/** The region in a Step Functions execution ARN (arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME). */
export function regionOfExecutionArn(arn: string): string | undefined {
  return /^arn:[\w-]+:states:([a-z0-9-]+):\d{12}:execution:[^:]+:[^:]+$/.exec(arn)?.[1];
}

export function describeExecutionLiveness(sfn: (region: string) => SFNClient): Liveness {
  return async (executionArn) => {
    const region = regionOfExecutionArn(executionArn);
    if (!region) return { running: null, status: 'InvalidArn' };
    try {
      const out = await aws(`Describing ${executionArn}`, () => sfn(region).send(new DescribeExecutionCommand({ executionArn })), { absentOn: ['ExecutionDoesNotExist'] });
      if (!out) return { running: false, status: 'DOES_NOT_EXIST' };
      const status = out.status ?? 'UNKNOWN';
      return { running: status === 'RUNNING' || status === 'PENDING_REDRIVE', status };
    } catch (error) {
      // Not known (throttled, refused): the share stays, and the code says why.
      return { running: null, status: awsCode(error) };
    }
  };
}

/** Ask once per execution, however many resources name it. */
export function memoised(liveness: Liveness): Liveness {
  const seen = new Map<string, Promise<ExecutionState>>();
  return (arn) => {
    let answer = seen.get(arn);
    if (!answer) seen.set(arn, (answer = liveness(arn)));
    return answer;
  };
}
