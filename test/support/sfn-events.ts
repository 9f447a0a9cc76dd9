import type { HistoryEvent, HistoryEventType } from '@aws-sdk/client-sfn';

/**
 * The `Step Functions Execution Status Change` event as AWS documents it (Step Functions Developer Guide,
 * "EventBridge (CloudWatch Events) for Step Functions execution status changes", the "Execution Aborted" example:
 * https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html). Only `detail.status` (and, where a test says
 * so, the ARNs and name) differ from the documented sample. docs/janitor.md cites the same page.
 */
export function statusChangeEvent(overrides: { status: string; executionArn?: string; stateMachineArn?: string; name?: string }) {
  const name = overrides.name ?? 'execution-name';
  return {
    version: '0',
    id: '315c1398-40ff-a850-213b-158f73e60175',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    account: '123456789012',
    time: '2019-02-26T19:42:21Z',
    region: 'us-east-1',
    resources: [overrides.executionArn ?? `arn:aws:states:us-east-1:123456789012:execution:state-machine-name:${name}`],
    detail: {
      executionArn: overrides.executionArn ?? `arn:aws:states:us-east-1:123456789012:execution:state-machine-name:${name}`,
      stateMachineArn: overrides.stateMachineArn ?? 'arn:aws:states:us-east-1:123456789012:stateMachine:state-machine',
      name,
      status: overrides.status,
      startDate: 1551225014968,
      stopDate: 1551225017576,
      input: '{}',
      inputDetails: { included: true },
      output: null,
      outputDetails: null,
    },
  };
}

/** A local run's execution as Step Functions' GetExecutionHistory gives it: each state's entry, and its exit with its output; a redrive's ExecutionRedriven. */
export function historyOf(events: readonly { type: string; redriveCount?: number; state?: { name: string; type: string; output?: unknown } }[]): HistoryEvent[] {
  return events.flatMap((e, i): HistoryEvent[] => {
    if (e.type === 'ExecutionRedriven') return [{ id: i + 1, timestamp: new Date(0), type: 'ExecutionRedriven', executionRedrivenEventDetails: { redriveCount: e.redriveCount ?? 1 } }];
    if (!e.state) return [];
    const base = { id: i + 1, timestamp: new Date(0) };
    if (e.type === 'StateExited') {
      return [{ ...base, type: `${e.state.type}StateExited` as HistoryEventType, stateExitedEventDetails: { name: e.state.name, output: JSON.stringify(e.state.output ?? null) } }];
    }
    if (e.type === 'StateEntered') return [{ ...base, type: `${e.state.type}StateEntered` as HistoryEventType, stateEnteredEventDetails: { name: e.state.name } }];
    return [];
  });
}
