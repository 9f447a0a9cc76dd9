/** README.md and the docs/ pages read as the style guide asks: short lines, and each page says first who it is for. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { docPages } from '../support/docs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A repository file named in code, e.g. `templates/target-account.yml` (not a pattern such as `runs/*`). */
const REPO_PATH = /^(bench|bin|cli|docs|examples|functions|iam|local|schema|scripts|statemachine|templates|test)\/[\w./-]*\w$/;

const MAX_LINE = 400;
const pages = docPages();

describe('README.md and docs/*.md', () => {
  it.each(pages.map((p) => [p.path, p] as const))(`%s has no line over ${MAX_LINE} characters`, (_, page) => {
    const long = page.text.split('\n').flatMap((line, i) => (line.length > MAX_LINE ? [`${page.path}:${i + 1} (${line.length})`] : []));
    expect(long).toEqual([]);
  });

  it.each(pages.filter((p) => p.path.startsWith('docs/')).map((p) => [p.path, p] as const))('%s starts with who it is for', (_, page) => {
    const [title, blank, opening] = page.text.split('\n');
    expect(title).toMatch(/^# \S/);
    expect(blank).toBe('');
    expect(opening).toMatch(/^For \S/);
  });

  it.each(pages.map((p) => [p.path, p] as const))('%s links to and names only files that exist', (_, page) => {
    const missing = page.text.split('\n').flatMap((line, i) => {
      const links = [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((l) => !/^(https?:|mailto:|#)/.test(l));
      const named = [...line.matchAll(/`([^`\s]+)`/g)].map((m) => m[1] ?? '').filter((t) => REPO_PATH.test(t));
      return [
        ...links.filter((l) => !existsSync(join(ROOT, dirname(page.path), l.split('#')[0] ?? ''))).map((l) => `${page.path}:${i + 1}: link ${l}`),
        ...named.filter((t) => !existsSync(join(ROOT, t))).map((t) => `${page.path}:${i + 1}: ${t}`),
      ];
    });
    expect(missing).toEqual([]);
  });

  it('README.md stays the short path (about 200 lines; the rest belongs in docs/)', () => {
    const readme = pages.find((p) => p.path === 'README.md');
    expect(readme?.text.split('\n').length).toBeLessThanOrEqual(220);
  });
});
