/**
 * The moto endpoint for integration tests: MOTO_ENDPOINT when .ci/run started one (with local/moto-amis.json
 * preloaded), else a server of our own. Without moto the tests are skipped with a message, except under CI,
 * where that is an error.
 */
import { afterAll, beforeAll } from 'vitest';
import type { Bundle } from '../../local/bundle';
import { motoInstalled, startMoto, waitForEndpoint, type Moto } from '../../local/moto';

export const MOTO_AVAILABLE = process.env.MOTO_ENDPOINT !== undefined || (await motoInstalled());

if (!MOTO_AVAILABLE) {
  if (process.env.CI) throw new Error('moto is not installed (python3 -m moto.server) but CI is set: the integration tests must run');
  console.warn('moto is not installed (python3 -m moto.server): skipping the integration tests');
}

/** Use the shared server when there is one (never stopped here), else start one for this file. */
export async function useMoto(): Promise<Moto> {
  const shared = process.env.MOTO_ENDPOINT;
  if (shared) {
    await waitForEndpoint(shared);
    return { endpoint: shared, stop: async () => undefined };
  }
  return startMoto();
}

let next = 0;
/** A 12-digit account ID no other test file uses: each file passes its own prefix (two digits). */
export function uniqueAccount(prefix: string): string {
  next += 1;
  return `${prefix}${String(process.pid % 10_000).padStart(4, '0')}${String(next).padStart(6, '0')}`;
}

/**
 * Moto for the enclosing describe block: started (or joined) before its tests with AWS_ENDPOINT_URL pointing at it,
 * and the function bundles built when asked; AWS_ENDPOINT_URL put back and moto stopped after them. Read `moto` and
 * `bundles` inside tests and hooks.
 */
export function motoSuite(options: { bundles?: boolean } = {}): { readonly moto: Moto; readonly bundles: Bundle[] } {
  let moto: Moto | undefined;
  let bundles: Bundle[] = [];
  let saved: string | undefined;
  beforeAll(async () => {
    moto = await useMoto();
    saved = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
    if (options.bundles) bundles = await (await import('../../local/bundle')).buildBundles();
  }, 120_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
    await moto?.stop();
  });
  return {
    get moto() {
      if (!moto) throw new Error('moto is not started yet: read it inside a test or hook');
      return moto;
    },
    get bundles() {
      return bundles;
    },
  };
}
