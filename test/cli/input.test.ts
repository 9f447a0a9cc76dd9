/** Reading an input file as editors write it. */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readInputFile } from '../../cli/input';
import { STUB_INPUT, tempDir } from '../support/cli';

describe('readInputFile', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a file that starts with a UTF-8 byte-order mark', () => {
    const path = join(dir, 'bom.json');
    writeFileSync(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(STUB_INPUT))]));
    expect(readInputFile(path).targets).toHaveLength(2);
  });

  it('names UTF-16 instead of failing on a garbled first character', () => {
    const path = join(dir, 'utf16.json');
    writeFileSync(path, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify(STUB_INPUT), 'utf16le')]));
    expect(() => readInputFile(path)).toThrow(`the input file ${path} looks UTF-16 encoded; save it as UTF-8`);
  });
});
