/**
 * A scripted Step Functions endpoint for the CLI tests: node:http on 127.0.0.1, speaking the SFN JSON
 * protocol (POST, X-Amz-Target: AWSStepFunctions.<Operation>, application/x-amz-json-1.0) and, for the
 * stack lookup, CloudFormation's query protocol (DescribeStacks only), and, for the run's manifest, S3's GetObject
 * (path style). One execution: RUNNING while its history grows stage by stage, one stage per DescribeExecution, then
 * its final status (RedriveExecution plays the stages again); its Distributed Map's one child execution is listed (ListExecutions by mapRunArn) once started.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface HistoryEventJson {
  id: number;
  previousEventId: number;
  timestamp: number;
  type: string;
  stateEnteredEventDetails?: { name: string; input: string; inputDetails: { truncated: boolean } };
  stateExitedEventDetails?: { name: string; output: string; outputDetails: { truncated: boolean } };
  mapRunStartedEventDetails?: { mapRunArn: string };
}

export type Final = { status: 'SUCCEEDED'; output: unknown } | { status: 'FAILED'; error: string; cause: string };

export interface Script {
  input: unknown;
  /** Events that appear with each RUNNING description, in order; the last stage comes with the final status. */
  stages: HistoryEventJson[][];
  final: Final;
  /** A child execution of the run's Map Run (its history grows with the run's, stage by stage). */
  child?: { stages: HistoryEventJson[][] };
  /** S3 objects the stub serves, by "bucket/key" (the run's manifest). */
  objects?: Record<string, unknown>;  /**
   * RedriveExecution: with a reason, refused (ExecutionNotRedrivable, DescribeExecution's redriveStatusReason);
   * otherwise the execution runs its stages again to its final status.
   */
  notRedrivable?: string;
}

export const STUB_MAP_RUN_ARN = 'arn:aws:states:eu-west-1:123456789012:mapRun:encrypted-ami-pipeline-stub/Targets:0f6c3b1e-1111-2222-3333-444444444444';
export const STUB_CHILD_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:encrypted-ami-pipeline-stub/Targets:7d1b2c3d-1111-2222-3333-444444444444';

export interface Request {
  target: string;
  body: Record<string, unknown>;
}

export interface SfnStub {
  endpoint: string;
  stateMachineArn: string;
  executionArn: string;
  requests: Request[];
  close(): Promise<void>;
}

export const STUB_STACK = 'ami-pipeline-stub-stack';
const PAGE_SIZE = 3;

/** Builds history events with increasing ids, a second apart. */
export class History {
  private id = 0;
  private readonly start = Math.floor(Date.now() / 1000);

  private next(type: string): HistoryEventJson {
    this.id += 1;
    return { id: this.id, previousEventId: this.id - 1, timestamp: this.start + this.id, type };
  }

  started(): HistoryEventJson {
    return this.next('ExecutionStarted');
  }

  entered(name: string, input: unknown, type = 'TaskStateEntered'): HistoryEventJson {
    return { ...this.next(type), stateEnteredEventDetails: { name, input: JSON.stringify(input), inputDetails: { truncated: false } } };
  }

  exited(name: string, output: unknown, type = 'TaskStateExited'): HistoryEventJson {
    return { ...this.next(type), stateExitedEventDetails: { name, output: JSON.stringify(output), outputDetails: { truncated: false } } };
  }

  other(type: string): HistoryEventJson {
    return this.next(type);
  }

  /** A Distributed Map that started its Map Run (how the CLI finds the child executions to follow). */
  mapRunStarted(mapRunArn: string): HistoryEventJson {
    return { ...this.next('MapRunStarted'), mapRunStartedEventDetails: { mapRunArn } };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify(body));
}

function xml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

export async function startSfnStub(script: Script): Promise<SfnStub> {
  const stateMachineArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:encrypted-ami-pipeline-stub';
  const executionArn = 'arn:aws:states:eu-west-1:123456789012:execution:encrypted-ami-pipeline-stub:cli-test-run';
  const requests: Request[] = [];
  const startDate = Date.now() / 1000;
  let describes = 0;

  const visible = (stages: HistoryEventJson[][]) => stages.slice(0, Math.min(describes, stages.length)).flat();
  const finished = () => describes >= script.stages.length;

  const sfn = (operation: string, body: Record<string, unknown>, res: ServerResponse) => {
    if (operation === 'ListExecutions' && body.mapRunArn === STUB_MAP_RUN_ARN) {
      const started = visible(script.stages).some((e) => e.mapRunStartedEventDetails);
      const executions = script.child && started ? [{ executionArn: STUB_CHILD_ARN, stateMachineArn, name: '7d1b2c3d-1111-2222-3333-444444444444', status: finished() ? 'SUCCEEDED' : 'RUNNING', startDate }] : [];
      return json(res, 200, { executions });
    }
    if (script.child && body.executionArn === STUB_CHILD_ARN && operation === 'GetExecutionHistory') return json(res, 200, { events: visible(script.child.stages) });
    if (operation !== 'StartExecution' && body.executionArn !== executionArn) {
      return json(res, 400, { __type: 'ExecutionDoesNotExist', message: `Execution Does Not Exist: '${String(body.executionArn)}'` });
    }
    switch (operation) {
      case 'RedriveExecution':
        if (script.notRedrivable) return json(res, 400, { __type: 'ExecutionNotRedrivable', message: `Execution ${executionArn} cannot be redriven: ${script.notRedrivable}` });
        describes = 0;
        return json(res, 200, { redriveDate: Date.now() / 1000 });
      case 'StartExecution':
        if (body.stateMachineArn !== stateMachineArn) return json(res, 400, { __type: 'StateMachineDoesNotExist', message: 'State Machine Does Not Exist' });
        return json(res, 200, { executionArn, startDate });
      case 'DescribeExecution': {
        describes += 1;
        const base = { executionArn, stateMachineArn, name: 'cli-test-run', startDate, input: JSON.stringify(script.input) };
        if (!finished()) return json(res, 200, { ...base, status: 'RUNNING' });
        const end = { ...base, status: script.final.status, stopDate: startDate + 60 };
        if (script.final.status === 'SUCCEEDED') return json(res, 200, { ...end, output: JSON.stringify(script.final.output) });
        return json(res, 200, { ...end, error: script.final.error, cause: script.final.cause });
      }
      case 'GetExecutionHistory': {
        const events = visible(script.stages);
        const offset = typeof body.nextToken === 'string' ? Number(body.nextToken.replace('page-', '')) : 0;
        const page = events.slice(offset, offset + PAGE_SIZE);
        const more = offset + PAGE_SIZE < events.length;
        return json(res, 200, { events: page, ...(more ? { nextToken: `page-${offset + PAGE_SIZE}` } : {}) });
      }
      default:
        return json(res, 400, { __type: 'UnknownOperationException', message: operation });
    }
  };

  const cloudFormation = (params: URLSearchParams, res: ServerResponse) => {
    const name = params.get('StackName');
    if (params.get('Action') !== 'DescribeStacks' || name !== STUB_STACK) {
      return xml(
        res,
        400,
        `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>stub</RequestId></ErrorResponse>`,
      );
    }
    return xml(
      res,
      200,
      `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
        `<StackName>${STUB_STACK}</StackName><StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/${STUB_STACK}/1</StackId>` +
        `<CreationTime>2025-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>` +
        `<Outputs><member><OutputKey>StateMachineArn</OutputKey><OutputValue>${stateMachineArn}</OutputValue></member></Outputs>` +
        `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeStacksResponse>`,
    );
  };

  const server = createServer((req, res) => {
    void readBody(req).then((text) => {
      if (req.method === 'GET') {
        const path = decodeURIComponent((req.url ?? '').split('?')[0] ?? '').replace(/^\//, '');
        requests.push({ target: 'S3.GetObject', body: { path } });
        const object = script.objects?.[path];
        if (object === undefined) {
          res.writeHead(404, { 'content-type': 'application/xml' });
          return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(object));
      }
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string' && target.startsWith('AWSStepFunctions.')) {
        const body = JSON.parse(text || '{}') as Record<string, unknown>;
        requests.push({ target, body });
        return sfn(target.slice('AWSStepFunctions.'.length), body, res);
      }
      const params = new URLSearchParams(text);
      requests.push({ target: `CloudFormation.${params.get('Action') ?? '?'}`, body: Object.fromEntries(params) });
      return cloudFormation(params, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stateMachineArn,
    executionArn,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
