/** The pipeline's functions wired to fresh dependencies, in process: the benchmark and the state machine tests run them. */
import { makeHandler as copyEncrypt } from '../functions/copy-encrypt';
import { makeHandler as createGrant } from '../functions/create-grant';
import { makeHandler as modifyAttributes } from '../functions/modify-attributes';
import { createNotifyDeps, makeHandler as notify } from '../functions/notify';
import { makeHandler as publish } from '../functions/publish';
import { makeHandler as rekey } from '../functions/rekey';
import { makeHandler as retention } from '../functions/retention';
import { makeHandler as preflight } from '../functions/preflight';
import { makeHandler as snapshot } from '../functions/snapshot';
import { makeHandler as verifyLaunch } from '../functions/verify-launch';
import { createJanitorDeps, makeHandler as janitor } from '../functions/janitor';
import { LOCAL_STATE_MACHINE_ARN } from '../local/executions';
import { createClientFactory } from '../functions/shared/clients';
import { makeHandler as recordManifest } from '../functions/record-manifest';
import { s3RunStore } from '../functions/shared/run-store';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { TaskHandler } from '../local/asl';

/** The runs bucket the tests' functions and the local Distributed Map use (FakeAws and moto both hold it). */
export const RUNS_BUCKET = 'ami-pipeline-runs-test';

/** `now` and `sleep` are the functions' clock (a virtual one in the budget tests and the benchmark). */
export function pipelineHandlers(now: () => Date = () => new Date(), sleep?: (ms: number) => Promise<void>): Record<string, TaskHandler> {
  const clients = createClientFactory('eu-west-1');
  const store = s3RunStore(() => clients.builder().s3('eu-west-1'));
  return {
    snapshot: snapshot({
      clients,
      pipelineRegion: 'eu-west-1',
      builderAccountId: async () => (await new STSClient({ region: 'eu-west-1' }).send(new GetCallerIdentityCommand({}))).Account ?? '',
      runsBucket: () => RUNS_BUCKET,
      store,
    }),
    recordManifest: recordManifest({ store }),
    modifyAttributes: modifyAttributes({ clients }),
    preflight: preflight({ clients }),
    copyEncrypt: copyEncrypt({ clients, now, ...(sleep ? { sleep } : {}) }),
    createGrant: createGrant({ clients }),
    verifyLaunch: verifyLaunch({ clients, now, ...(sleep ? { sleep } : {}) }),
    publish: publish({ clients, now }),
    rekey: rekey({ clients }),
    retention: retention({ clients, now }),
    notify: notify(createNotifyDeps('eu-west-1')),
    // The janitor's reader: local runs belong to the local state machine (local/executions.ts).
    janitor: janitor({ ...createJanitorDeps(clients), pipelineStateMachineArn: LOCAL_STATE_MACHINE_ARN }),
  };
}
