/**
 * States: CopyEncryptImage, GetImageState, FindTargetCopy. Serverless function: copyEncrypt.
 * Inside one target account and region (through the target role). One module per action:
 * - copy (functions/copy-encrypt/start.ts): checks the target key (exists, enabled, symmetric, customer managed, owned
 *   by the target account), reuses an existing copy of the same source with the same key (found by tags), else
 *   CopyImage with Encrypted=true, the target's key and a ClientToken that does not depend on the run (concurrent runs
 *   get one copy). Returns the copy and the first wait of the poll loop.
 * - status (functions/copy-encrypt/status.ts): reads the copy's state for the wait loop; once available, tags it (and
 *   its snapshots), checks its provenance (SourceImageId / SourceImageRegion must be the run's source: else
 *   ProvenanceMismatchError, before any grant or launch) and sets its deprecation (copy.deprecateAfterDays,
 *   EnableImageDeprecation); a `failed` copy is deregistered with its snapshots and becomes ImageCopyFailedError
 *   carrying AWS's StateReason.
 * - find (functions/copy-encrypt/find.ts): on the failure path, reports the copy this run made (if any) so the
 *   manifest accounts for it.
 * The copy carries the pipeline's tags plus copy.tags (placeholders expanded) and the source tags ResolveSource
 * selected (copy.copySourceTags), all in CopyImage's TagSpecifications so tag policies requiring tags at creation hold.
 * Throws KmsKeyUnusableError, ImageCopyFailedError, ProvenanceMismatchError, TargetRoleNotAssumableError, AccessDeniedError (terminal);
 * ImageNotYetVisibleError, CopyLimitExceededError, throttling and 5xx (retryable).
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import * as z from 'zod';
import { clientFactory } from './shared/client-factory';
import { itemLogContext, lambdaHandler } from './shared/handler';
import { parsePayload, targetItemSchema } from './shared/plan';
import { copyStateSchema, type CopyEncryptDeps, type CopyState, type FoundCopy } from './copy-encrypt/copy-state';
import { findCopy } from './copy-encrypt/find';
import { copyClientToken, copyName, MAX_TOKEN_LINKS, startCopy, userTags } from './copy-encrypt/start';
import { checkProvenance, copyStatus } from './copy-encrypt/status';

export { checkProvenance, copyClientToken, copyName, copyStateSchema, copyStatus, findCopy, MAX_TOKEN_LINKS, startCopy, userTags };
export type { CopyEncryptDeps, CopyState, FoundCopy };

export const copyEncryptEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('copy'), item: targetItemSchema }),
  z.object({ action: z.literal('status'), item: targetItemSchema, copy: copyStateSchema }),
  z.object({ action: z.literal('find'), item: targetItemSchema }),
]);
export type CopyEncryptEvent = z.infer<typeof copyEncryptEventSchema>;

export const defaultDeps: CopyEncryptDeps = { clients: clientFactory({ ec2: EC2Client, kms: KMSClient }), now: () => new Date() };

export async function copyEncrypt(event: CopyEncryptEvent, deps: CopyEncryptDeps = defaultDeps): Promise<CopyState | FoundCopy> {
  switch (event.action) {
    case 'copy':
      return startCopy(event.item, deps);
    case 'status':
      return copyStatus(event.item, event.copy, deps);
    case 'find':
      return findCopy(event.item, deps);
  }
}

export const makeHandler = (deps: CopyEncryptDeps = defaultDeps) =>
  lambdaHandler('CopyEncrypt', itemLogContext, (event) => copyEncrypt(parsePayload(copyEncryptEventSchema, event, 'event'), deps));

export const handler = makeHandler();
