import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const FROM_TEST = { regex: '(^|/)test/', message: 'Shipped code (functions, cli, local, bench) never imports test/: move what it needs out of test/.' };
const HANDLER_FROM_HANDLER = { regex: '^\\./(?!shared/)[^/]+$', message: 'A handler never imports another handler: move the shared piece into functions/shared/.' };
const HANDLER_FROM_BELOW = {
  regex: '^\\.\\./(?!shared/)',
  message: 'functions/shared/ and per-action modules never import a handler: move the shared piece into functions/shared/.',
};
const HANDLER_FROM_CLI = { regex: '^(\\.\\./)+functions/(?!shared/)[^/]+$', message: 'The CLI and local tools never import a handler: use (or move the piece into) functions/shared/.' };

/** One no-restricted-imports block per folder (a later block replaces an earlier one's patterns, so each lists all of its own). */
function layers(folders) {
  return Object.entries(folders).map(([glob, patterns]) => ({
    files: [glob],
    rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, FROM_TEST] }] },
  }));
}

export default tseslint.config(
  { ignores: ['node_modules/', '.serverless/', '.esbuild/', 'dist/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  // Dependencies run one way: handlers and the CLI import functions/shared/, never a handler; nothing shipped imports test/.
  ...layers({
    'functions/*.ts': [HANDLER_FROM_HANDLER],
    'functions/*/**/*.ts': [HANDLER_FROM_BELOW],
    'cli/**/*.ts': [HANDLER_FROM_CLI],
    'local/**/*.ts': [HANDLER_FROM_CLI],
    'bench/**/*.ts': [],
  }),
  {
    files: ['bin/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  {
    // esbuild-plugins.cjs: serverless-esbuild require()s it.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
