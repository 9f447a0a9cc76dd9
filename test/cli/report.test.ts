/** The end of a run: --manifest is checked before the run, and the result is printed even when writing it fails. */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../../cli/main';
import { checkManifestPath, report } from '../../cli/report';
import { stubManifest, tempDir } from '../support/cli';

function capture() {
  let stdout = '';
  let stderr = '';
  return {
    io: { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

describe('--manifest FILE', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a new file in an existing folder, and an existing file', () => {
    expect(() => checkManifestPath(join(dir, 'new.json'), 'run')).not.toThrow();
    writeFileSync(join(dir, 'old.json'), '{}');
    expect(() => checkManifestPath(join(dir, 'old.json'), 'run')).not.toThrow();
  });

  it.each([
    ['/nonexistent/dir/m.json', 'the folder /nonexistent/dir does not exist; create it first or choose another path'],
    ['', 'needs a file name'],
  ])('refuses %j, naming the flag and the fix', (path, why) => {
    expect(() => checkManifestPath(path, 'run')).toThrow(`--manifest ${path}: ${why}`);
  });

  it('refuses a folder, and a path under a file', () => {
    mkdirSync(join(dir, 'folder'));
    expect(() => checkManifestPath(join(dir, 'folder'), 'status')).toThrow('is a folder; give a file name in it');
    writeFileSync(join(dir, 'plain'), '');
    expect(() => checkManifestPath(join(dir, 'plain', 'm.json'), 'run')).toThrow(`${join(dir, 'plain')} is not a folder`);
  });

  it('refuses a folder it cannot write to', () => {
    // Root may write anywhere, and CI runs as root: the folder's access check is refused as the kernel would (EACCES).
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    const deny = (p: string) => {
      if (p === locked) throw Object.assign(new Error(`EACCES: permission denied, access '${p}'`), { code: 'EACCES' });
    };
    expect(() => checkManifestPath(join(locked, 'm.json'), 'run', deny)).toThrow(`the folder ${locked} is not writable`);
    expect(() => checkManifestPath(join(dir, 'm.json'), 'run', deny)).not.toThrow();
  });

  it('stops a run with a bad path before reading the input or calling AWS (exit 2)', async () => {
    const out = capture();
    const code = await cli(['run', '--input', join(dir, 'no-such-input.json'), '--manifest', '/nonexistent/dir/m.json'], out.io);
    expect(code).toBe(2);
    expect(out.stderr).toBe("ami-pipeline: --manifest /nonexistent/dir/m.json: the folder /nonexistent/dir does not exist; create it first or choose another path\nrun 'ami-pipeline run --help' for usage\n");
  });

  it('prints the table, then says the manifest could not be written, and exits 1', () => {
    const path = join(dir, 'gone', 'm.json');
    const out = capture();
    const code = report({ status: 'SUCCEEDED', executionName: 'cli-test-run', manifest: stubManifest(false) }, { output: 'table', manifestPath: path }, out.io);
    expect(code).toBe(1);
    expect(out.stdout).toContain('111111111111');
    expect(out.stdout).not.toContain('manifest written');
    expect(out.stderr).toMatch(new RegExp(`^ami-pipeline: cannot write the manifest to ${path}: ENOENT`));
  });

  it('writes the manifest and says so', () => {
    const path = join(dir, 'written.json');
    const out = capture();
    const manifest = stubManifest(false);
    expect(report({ status: 'SUCCEEDED', executionName: 'cli-test-run', manifest }, { output: 'table', manifestPath: path }, out.io)).toBe(0);
    expect(out.stdout).toContain(`manifest written to ${path}`);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(manifest);
  });
});
