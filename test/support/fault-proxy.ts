/**
 * A fault-injecting HTTP proxy in front of an AWS-compatible endpoint: EC2 throttling every Nth call,
 * a burst of 503s, and AssumeRole refused for chosen accounts. The service and region come from the
 * request's SigV4 credential scope, the EC2 action and the role from its query-protocol body.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';

export interface FaultPlan {
  /** Answer every Nth EC2 call with RequestLimitExceeded (0: never). */
  throttleEveryNthEc2Call?: number;
  /** After this many EC2 calls, answer the next `burstLength` EC2 calls with 503 Unavailable. */
  burstAfterEc2Calls?: number;
  burstLength?: number;
  /** AssumeRole into these accounts answers AccessDenied. */
  unassumableAccounts?: string[];
}

export interface FaultProxy {
  endpoint: string;
  counts: { ec2Calls: number; throttled: number; burst: number; deniedAssumeRole: number; forwarded: number };
  close(): Promise<void>;
}

const ec2Error = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`;
const stsError = (code: string, message: string) =>
  `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startFaultProxy(target: string, plan: FaultPlan): Promise<FaultProxy> {
  const upstream = new URL(target);
  const counts = { ec2Calls: 0, throttled: 0, burst: 0, deniedAssumeRole: 0, forwarded: 0 };
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const scope = /Credential=[^/]+\/\d+\/([^/]+)\/([^/]+)\//.exec(String(req.headers.authorization ?? ''));
    const service = scope?.[2] ?? '';
    const text = body.toString('utf8');
    const params = new URLSearchParams(text);
    const reply = (status: number, xml: string) => {
      res.writeHead(status, { 'content-type': 'text/xml' });
      res.end(xml);
    };
    if (service === 'sts' && params.get('Action') === 'AssumeRole') {
      const account = /iam::(\d{12}):/.exec(params.get('RoleArn') ?? '')?.[1];
      if (account && plan.unassumableAccounts?.includes(account)) {
        counts.deniedAssumeRole += 1;
        return reply(403, stsError('AccessDenied', `User: arn:aws:sts::123456789012:assumed-role/TargetAccessRole/x is not authorized to perform: sts:AssumeRole on resource: ${params.get('RoleArn') ?? ''}`));
      }
    }
    if (service === 'ec2') {
      counts.ec2Calls += 1;
      const start = plan.burstAfterEc2Calls ?? Number.POSITIVE_INFINITY;
      if (counts.ec2Calls > start && counts.ec2Calls <= start + (plan.burstLength ?? 0)) {
        counts.burst += 1;
        return reply(503, ec2Error('Unavailable', 'The service is unavailable. Please try again shortly.'));
      }
      const n = plan.throttleEveryNthEc2Call ?? 0;
      if (n > 0 && counts.ec2Calls % n === 0) {
        counts.throttled += 1;
        return reply(503, ec2Error('RequestLimitExceeded', 'Request limit exceeded.'));
      }
    }
    counts.forwarded += 1;
    const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
    const forward = request(
      { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', (e) => reply(502, ec2Error('ProxyError', e.message)));
    forward.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
