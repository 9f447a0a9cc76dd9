/**
 * Local runs as Step Functions executions. A local run has no execution in AWS, yet the share ledger and the cleanup
 * ask Step Functions whether the run that shared a source is still running (states:DescribeExecution). This module
 * keeps a registry of this machine's local runs (one file each, with the process that runs it) and serves
 * DescribeExecution for them on a local endpoint, which the runner hands the functions through the SDK's standard
 * AWS_ENDPOINT_URL_SFN setting. A run whose process is gone (killed) reads ABORTED.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './process-alive';

/** The state machine local runs belong to (local/asl.ts names the parent execution after it). */
export const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:encrypted-ami-pipeline-local';
export const LOCAL_EXECUTION_PREFIX = 'arn:aws:states:us-east-1:123456789012:execution:encrypted-ami-pipeline-local:';

export type LocalStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';

interface Entry {
  name: string;
  pid: number;
  status: LocalStatus;
  startDate: string;
  stopDate?: string;
}

/** Where the registry lives: AMI_PIPELINE_LOCAL_EXECUTIONS, or a folder in the temporary directory. */
export function registryDir(): string {
  return process.env.AMI_PIPELINE_LOCAL_EXECUTIONS ?? join(tmpdir(), 'ami-pipeline-local-executions');
}

const file = (name: string) => join(registryDir(), `${name.replace(/[^\w.-]/g, '_')}.json`);

export function localExecutionArn(name: string): string {
  return `${LOCAL_EXECUTION_PREFIX}${name}`;
}

export function recordStart(name: string): void {
  mkdirSync(registryDir(), { recursive: true });
  const entry: Entry = { name, pid: process.pid, status: 'RUNNING', startDate: new Date().toISOString() };
  writeFileSync(file(name), JSON.stringify(entry));
}

export function recordEnd(name: string, status: Exclude<LocalStatus, 'RUNNING'>): void {
  const entry = read(name);
  if (!entry) return;
  writeFileSync(file(name), JSON.stringify({ ...entry, status, stopDate: new Date().toISOString() }));
}

function read(name: string): Entry | undefined {
  try {
    return JSON.parse(readFileSync(file(name), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
}

/** A local execution's status as DescribeExecution reports it; undefined when this machine never ran it. */
export function localStatus(executionArn: string): { status: LocalStatus; startDate: string; stopDate?: string } | undefined {
  if (!executionArn.startsWith(LOCAL_EXECUTION_PREFIX)) return undefined;
  const entry = read(executionArn.slice(LOCAL_EXECUTION_PREFIX.length));
  if (!entry) return undefined;
  const status = entry.status === 'RUNNING' && !processAlive(entry.pid) ? 'ABORTED' : entry.status;
  return { status, startDate: entry.startDate, ...(entry.stopDate ? { stopDate: entry.stopDate } : {}) };
}

let server: Promise<string> | undefined;

/**
 * The local Step Functions endpoint (started once per process, never keeping it alive): DescribeExecution of local
 * runs in the AWS JSON 1.0 protocol. Executions that are not local are not visible here: they answer
 * LocalRunnerCannotDescribe, which the ledger takes as "unknown" and so keeps what they made.
 */
export function localStepFunctionsEndpoint(): Promise<string> {
  server ??= new Promise((resolve, reject) => {
    const s: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const reply = (status: number, payload: unknown) => {
          // No keep-alive: a lingering socket would hold the CLI's process open after its run.
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', connection: 'close' });
          res.end(JSON.stringify(payload));
        };
        const target = String(req.headers['x-amz-target'] ?? '');
        if (target !== 'AWSStepFunctions.DescribeExecution') {
          reply(400, { __type: 'UnknownOperationException', message: `The local runner serves DescribeExecution only, not ${target}` });
          return;
        }
        let executionArn: string;
        try {
          executionArn = String((JSON.parse(body) as { executionArn?: unknown }).executionArn ?? '');
        } catch {
          reply(400, { __type: 'SerializationException', message: 'The body is not JSON' });
          return;
        }
        if (!executionArn.startsWith(LOCAL_EXECUTION_PREFIX)) {
          reply(400, { __type: 'LocalRunnerCannotDescribe', message: `The local runner cannot see ${executionArn}` });
          return;
        }
        const found = localStatus(executionArn);
        if (!found) {
          reply(400, { __type: 'ExecutionDoesNotExist', message: `Execution Does Not Exist: '${executionArn}'` });
          return;
        }
        reply(200, {
          executionArn,
          stateMachineArn: LOCAL_STATE_MACHINE_ARN,
          name: executionArn.slice(LOCAL_EXECUTION_PREFIX.length),
          status: found.status,
          startDate: Date.parse(found.startDate) / 1000,
          ...(found.stopDate ? { stopDate: Date.parse(found.stopDate) / 1000 } : {}),
        });
      });
    });
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      s.unref();
      resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    });
  });
  return server;
}
