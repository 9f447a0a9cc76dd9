import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    // The local runner imports the functions' esbuild bundles: load them as Node does, not through Vite's
    // transform (megabytes of already-bundled code, imported afresh on every run).
    server: { deps: { external: [/ami-pipeline-bundles-/] } },
    env: {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      // Each function bundle the local runner loads would print the SDK's Node 20 notice again.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
