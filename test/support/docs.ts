/** The repository's prose: README.md and every docs/*.md page, and the command lines they show. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Page {
  /** Relative to the repository, e.g. docs/cli.md. */
  path: string;
  text: string;
}

export function docPages(): Page[] {
  const docs = readdirSync(`${ROOT}docs`).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  return ['README.md', ...docs].map((path) => ({ path, text: readFileSync(`${ROOT}${path}`, 'utf8') }));
}

export interface CommandLine {
  /** Where it stands: docs/cli.md:12. */
  at: string;
  /** The words after `ami-pipeline`, up to a pipe, a redirection or a comment. */
  words: string[];
}

/** `npm run cli -- ARGS` and `npm run demo -- ARGS` are the command line too. */
const ALIASES: [RegExp, string][] = [
  [/\bnpm run cli(?: --)?(?=\s|$)/g, 'ami-pipeline'],
  [/\bnpm run demo(?: --)?(?=\s|$)/g, 'ami-pipeline demo'],
];

/**
 * Every `ami-pipeline …` command shown in code (a line of a fenced block, or an inline code span) that starts with
 * it: `ami-pipeline` alone names the tool, and encrypted-ami-pipeline-prod or bin/ami-pipeline.mjs are other names.
 * Shell continuations (a trailing backslash) are joined.
 */
export function commandLines(page: Page): CommandLine[] {
  const found: CommandLine[] = [];
  const lines = page.text.split('\n');
  let fenced = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? '';
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    const at = `${page.path}:${i + 1}`;
    let code: string[];
    if (fenced) {
      let joined = line;
      while (joined.endsWith('\\') && i + 1 < lines.length) joined = `${joined.slice(0, -1)} ${lines[(i += 1)] ?? ''}`;
      code = [joined];
    } else {
      // Inline spans; a table's escaped pipe (\|) stays inside its span.
      code = [...line.matchAll(/`([^`]+)`/g)].map((m) => (m[1] ?? '').replaceAll('\\|', '|'));
    }
    for (let text of code) {
      for (const [pattern, replacement] of ALIASES) text = text.replace(pattern, replacement);
      // A command starts its line, its span, or a command after && or ;.
      for (const segment of text.split(/\s&&\s|;\s/)) {
        const m = /^\s*(?:\$\s+)?ami-pipeline(?:\s+(.*))?$/.exec(segment);
        if (!m) continue;
        // Up to a pipe, a redirection or a comment.
        const words = (m[1] ?? '').split(/\s(?:\||#|\d?>)(?:\s|$)/)[0]?.trim().split(/\s+/).filter(Boolean) ?? [];
        if (words.length > 0) found.push({ at, words });
      }
    }
  }
  return found;
}
