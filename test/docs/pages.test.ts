/** README.md and the docs/ pages read as the style guide asks: short lines, and each page says first who it is for. */
import { describe, expect, it } from 'vitest';
import { docPages } from '../support/docs';

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

  it('README.md stays the short path (about 200 lines; the rest belongs in docs/)', () => {
    const readme = pages.find((p) => p.path === 'README.md');
    expect(readme?.text.split('\n').length).toBeLessThanOrEqual(220);
  });
});
