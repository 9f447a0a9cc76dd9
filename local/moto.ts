/**
 * Start and stop a moto server on a free loopback port, for the demo and the integration tests.
 * MOTO_AMIS_PATH preloads local/moto-amis.json: base images owned by the builder account (moto's default
 * account, 123456789012), the only images moto lets other accounts copy (see docs/local-runs.md).
 * The server is local/moto-server.py: moto with the test-side extensions of local/moto_ext (EC2's AMI life-cycle
 * APIs, ...) installed; same flags as `python3 -m moto.server`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const MOTO_BUILDER_ACCOUNT = '123456789012';
export const MOTO_AMIS_PATH = fileURLToPath(new URL('./moto-amis.json', import.meta.url));
export const MOTO_SERVER_PATH = fileURLToPath(new URL('./moto-server.py', import.meta.url));

export interface Moto {
  endpoint: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the server answers; fails when it exits or does not answer within `timeoutMs`. */
export async function waitForEndpoint(endpoint: string, timeoutMs = 20_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`moto exited with code ${child.exitCode} while starting`);
    try {
      await fetch(`${endpoint}/moto-api/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`no answer from ${endpoint} within ${timeoutMs / 1000} s`);
}

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child = spawn('python3', [MOTO_SERVER_PATH, '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, MOTO_AMIS_PATH },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Error(`cannot start moto (python3 local/moto-server.py): ${e.message}`))));
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([waitForEndpoint(endpoint, 20_000, child), spawnError]);
  } catch (error) {
    child.kill();
    throw new Error(`${(error as Error).message}${stderr ? `\n${stderr}` : ''}`, { cause: error });
  }
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

/** Whether moto can be started here. */
export function motoInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn('python3', ['-c', 'import moto.server'], { stdio: 'ignore' });
    probe.once('error', () => resolve(false));
    probe.once('exit', (code) => resolve(code === 0));
  });
}
