/**
 * esbuild plugins for the Lambda bundles: serverless-esbuild loads this file (custom.esbuild.plugins in serverless.yml,
 * through require(), hence CommonJS) and local/bundle.ts loads the same file, so both build identical bundles.
 */
const { readFile } = require('node:fs/promises');

/**
 * AWS SDK clients since 3.930 write their schema traits with computed keys (`{ [_eQN]: 'Min' }`, `_eQN` a string
 * constant of the same file). esbuild cannot prove a computed key free of side effects, so it keeps every schema of
 * the client: client-ec2 puts ~540 KB in a bundle for a single command. Writing those keys as the string literals
 * they name changes nothing at run time and lets esbuild drop the schemas no imported command reaches.
 * aws/aws-sdk-js-v3#7607; the code generator's fix is smithy-lang/smithy-typescript#1889. Drop this once the SDK
 * emits literal keys (the package test's size ceilings stay as the guard).
 */
const sdkSchemaLiteralKeys = {
  name: 'sdk-schema-literal-keys',
  setup(build) {
    build.onLoad({ filter: /[\\/]@aws-sdk[\\/].+[\\/]dist-es[\\/](?:.+[\\/])?schemas[\\/]schemas_\d+\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const strings = new Map();
      for (const [, name, literal] of source.matchAll(/^const (_\w+) = ("[^"\\\n]*");$/gm)) strings.set(name, literal);
      const contents = source.replace(/\[(_\w+)\]:/g, (key, name) => (strings.has(name) ? `${strings.get(name)}:` : key));
      return { contents, loader: 'js' };
    });
  },
};

module.exports = [sdkSchemaLiteralKeys];
