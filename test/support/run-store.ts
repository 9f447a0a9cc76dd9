/** The runs bucket in memory, for unit tests of the functions that read and write it. */
import type { RunStore } from '../../functions/shared/run-store';

export interface MemoryRunStore extends RunStore {
  /** Files by `bucket/key`, as parsed JSON. */
  files: Map<string, unknown>;
}

export function memoryRunStore(): MemoryRunStore {
  const files = new Map<string, unknown>();
  return {
    files,
    putJson: async (bucket, key, value) => {
      files.set(`${bucket}/${key}`, JSON.parse(JSON.stringify(value)) as unknown);
    },
    getJson: async (bucket, key) => {
      if (!files.has(`${bucket}/${key}`)) throw Object.assign(new Error(`NoSuchKey: ${bucket}/${key}`), { name: 'AwsRequestFailedError' });
      return files.get(`${bucket}/${key}`);
    },
  };
}
