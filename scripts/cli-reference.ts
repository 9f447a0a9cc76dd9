/**
 * docs/cli.md's command reference, made from the CLI's own table (cli/usage.ts): the same usage, options, notes and
 * examples `ami-pipeline COMMAND --help` prints. `npm run docs` writes it; test/cli/usage.test.ts checks it is current.
 */
import { COMMANDS, optionRows } from '../cli/usage';

export const CLI_DOC = new URL('../docs/cli.md', import.meta.url);
const START = '<!-- cli-reference: made from cli/usage.ts by `npm run docs`; edit that table, not this section -->';
const END = '<!-- cli-reference end -->';

/** A table cell: `|` would end the cell. */
const cell = (text: string) => text.replaceAll('|', '\\|');

export function cliReference(): string {
  const sections = Object.entries(COMMANDS).map(([name, spec]) => [
    `### ${name}`,
    '',
    `\`ami-pipeline ${cell(spec.usage)}\`: ${spec.summary}.`,
    '',
    '| flag | meaning |',
    '|---|---|',
    ...optionRows(spec).map(([flag, meaning]) => `| \`${cell(flag)}\` | ${cell(meaning)} |`),
    ...(spec.notes ? ['', ...spec.notes] : []),
    '',
    '```bash',
    ...spec.examples,
    '```',
  ].join('\n'));
  return [START, '', ...sections.flatMap((s) => [s, '']), END].join('\n');
}

/** The page with its reference section replaced by the current one. */
export function withCliReference(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/cli.md has no section between "${START}" and "${END}"`);
  return page.slice(0, start) + cliReference() + page.slice(end + END.length);
}
