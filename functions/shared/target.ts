/** Reaching a target account: the clients acting inside it through its pipeline role. */
import { sessionNameFor, type ClientFactory, type Clients } from './client-factory';
import type { TargetItem } from './plan';

/** "ACCOUNT/REGION" of a target, as messages name it. */
export const where = (item: { target: Pick<TargetItem['target'], 'accountId' | 'region'> }): string => `${item.target.accountId}/${item.target.region}`;

/** Clients inside the target account, always through its role (also when the target is the builder account itself). */
export function targetClients(item: Pick<TargetItem, 'executionName' | 'target' | 'settings'>, deps: { clients: ClientFactory }): Clients {
  return deps.clients.target({
    accountId: item.target.accountId,
    roleName: item.settings.targetRoleName,
    externalId: item.settings.externalId ?? undefined,
    sessionName: sessionNameFor(item.executionName),
  });
}

