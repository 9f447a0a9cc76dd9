/**
 * What the user sees: the live view of a run (redrawn in place on a terminal, one line per change
 * otherwise) and the manifest as a table with a summary line.
 */
import type { OuExpansion } from '../functions/shared/organization';
import type { Manifest, TargetResult } from '../functions/shared/manifest-schema';
import { formatDuration, type Change, type ProgressTracker, type TargetProgress } from './progress';

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

const REDRAW_MS = 200;

export function progressBar(finished: number, total: number, width = 20): string {
  const filled = total === 0 ? 0 : Math.round((finished / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total}`;
}

function fit(line: string, columns: number | undefined): string {
  return columns && line.length > columns ? `${line.slice(0, Math.max(0, columns - 1))}…` : line;
}

function targetLine(tracker: ProgressTracker, t: TargetProgress, now: number): string {
  const elapsed = t.startedAt === null ? '' : formatDuration(tracker.elapsed(t, now));
  const error = t.phase === 'failed' && t.error ? `  ${t.error}` : '';
  return `  ${t.accountId}  ${t.region.padEnd(14)}  ${t.phase.padEnd(9)}  ${elapsed.padStart(7)}${error}`;
}

/** The lines of the in-place view. */
export function liveLines(tracker: ProgressTracker, title: string, now = Date.now(), rows = Infinity): string[] {
  const { finished, done, failed, total } = tracker.counts();
  const head = [
    `${title}  ${formatDuration(Math.max(0, now - tracker.startedAt))}  ${tracker.stage}`,
    `${progressBar(finished, total)} targets finished${failed ? ` (${done} done, ${failed} failed)` : ''}`,
  ];
  let targets = tracker.targets();
  let hidden = '';
  const room = rows - head.length - 1;
  if (targets.length > room) {
    const active = targets.filter((t) => t.phase !== 'done');
    const shown = active.slice(0, Math.max(0, room - 1));
    hidden = `  … and ${targets.length - shown.length} more (${done} done)`;
    targets = shown;
  }
  return [...head, ...targets.map((t) => targetLine(tracker, t, now)), ...(hidden ? [hidden] : [])];
}

/** One plain line for a change, for logs and pipes. */
export function plainLine(tracker: ProgressTracker, change: Change, now = Date.now()): string | undefined {
  if (change.stage) return `run: ${change.stage}`;
  const t = change.target;
  if (!t) return undefined;
  const error = t.phase === 'failed' && t.error ? `: ${t.error}` : '';
  return `${t.accountId} ${t.region} ${t.phase} (${formatDuration(tracker.elapsed(t, change.at ?? now))})${error}`;
}

export interface LiveView {
  /** A line of its own above the view (the execution ARN, a notice). */
  note(text: string): void;
  update(changes: Change[]): void;
  /** Draw the final state and stop redrawing. */
  stop(): void;
}

export function createLiveView(out: Output, tracker: ProgressTracker, title: string): LiveView {
  let stopped = false;
  if (!out.isTTY) {
    let wrote = false;
    const line = (text: string) => {
      out.write(`${text}\n`);
      wrote = true;
    };
    return {
      note: line,
      update: (changes) => {
        for (const change of changes) {
          const text = plainLine(tracker, change);
          if (text) line(text);
        }
      },
      stop: () => {
        if (!stopped && wrote) out.write('\n');
        stopped = true;
      },
    };
  }
  let drawn = 0;
  let dirty = true;
  let lastDraw = 0;
  const draw = () => {
    const lines = liveLines(tracker, title, Date.now(), out.rows ?? Infinity).map((l) => fit(l, out.columns));
    const up = drawn > 0 ? `\x1b[${drawn}A` : '';
    const extra = Math.max(0, drawn - lines.length);
    out.write(`${up}${lines.map((l) => `\r\x1b[2K${l}\n`).join('')}${'\x1b[2K\n'.repeat(extra)}${extra ? `\x1b[${extra}A` : ''}`);
    drawn = lines.length;
    dirty = false;
    lastDraw = Date.now();
  };
  // Redraw at most every REDRAW_MS when something changed, and every second for the clocks.
  const timer = setInterval(() => {
    if (dirty || Date.now() - lastDraw >= 1000) draw();
  }, REDRAW_MS);
  timer.unref();
  draw();
  return {
    note: (text) => {
      if (drawn > 0) out.write(`\x1b[${drawn}A\r\x1b[J`);
      out.write(`${fit(text, out.columns)}\n`);
      drawn = 0;
      draw();
    },
    update: (changes) => {
      if (changes.length > 0) dirty = true;
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      draw();
      out.write('\n');
    },
  };
}

function shortKey(arn: string | null): string {
  if (!arn) return '-';
  const key = /:(key|alias)\/(.+)$/.exec(arn);
  if (!key?.[2]) return arn;
  return `${key[1]}/${key[2].length > 12 ? `${key[2].slice(0, 8)}…` : key[2]}`;
}

function short(id: string | null | undefined, n = 10): string {
  if (!id) return '-';
  return id.length > n + 1 ? `${id.slice(0, n)}…` : id;
}

function launchCheck(r: TargetResult): string {
  if (!r.launchCheck) return '-';
  const mode = r.launchCheck.mode === 'auto-scaling' ? 'asg' : r.launchCheck.mode;
  return r.launchCheck.state === 'skipped' ? 'skipped' : `${r.launchCheck.state} (${mode})`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/** The manifest as a table, its summary, and the full error of every failed target whose message was cut. */
export function manifestTable(manifest: Manifest, columns = 120): string {
  const header = ['ACCOUNT', 'REGION', 'STATUS', 'IMAGE', 'KEY', 'GRANT', 'LAUNCH CHECK', 'ERROR'];
  const rows = manifest.results.map((r) => [
    r.accountId,
    r.region,
    r.status,
    r.imageId ?? '-',
    shortKey(r.kmsKeyArn),
    short(r.grantId),
    launchCheck(r),
    r.error ? oneLine(`${r.error.name}: ${r.error.message}`) : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (i === header.length - 1 ? 0 : (row[i] ?? '').length))));
  const used = widths.slice(0, -1).reduce((n, w) => n + w + 2, 0);
  const errorWidth = Math.max(12, columns - used);
  const cut: string[] = [];
  const format = (row: string[], isHeader = false) =>
    row
      .map((cell, i) => {
        if (i < row.length - 1) return cell.padEnd(widths[i] ?? 0);
        if (!isHeader && cell.length > errorWidth) cut.push(`${row[0]} ${row[1]}: ${cell}`);
        return truncate(cell, errorWidth);
      })
      .join('  ')
      .trimEnd();
  const lines = [format(header, true), ...rows.map((row) => format(row))];
  if (manifest.results.length === 0) lines.push('(no targets)');
  lines.push('', summaryLine(manifest));
  for (const ou of manifest.organization ?? []) lines.push(expansionLine(ou));
  if (cut.length > 0) lines.push('', 'Errors:', ...cut.map((c) => `  ${c}`));
  return `${lines.join('\n')}\n`;
}

/** One OU entry's expansion: found, targeted, skipped (with state), excluded, targeted by another entry. */
export function expansionLine(ou: OuExpansion): string {
  const parts = [`${ou.found} account(s) found`, `${ou.targeted.length} targeted`];
  if (ou.skipped.length) parts.push(`skipped (not ACTIVE): ${ou.skipped.map((s) => `${s.accountId} ${s.state}`).join(', ')}`);
  if (ou.excluded.length) parts.push(`excluded: ${ou.excluded.join(', ')}`);
  if (ou.coveredElsewhere.length) parts.push(`targeted by another entry: ${ou.coveredElsewhere.join(', ')}`);
  if (ou.notListed) parts.push(`not listed: ${ou.notListed.skipped} more skipped, ${ou.notListed.excluded} more excluded, ${ou.notListed.coveredElsewhere} more targeted by another entry`);
  return `${ou.organizationalUnitId}: ${parts.join('; ')}`;
}

export function summaryLine(manifest: Manifest): string {
  const total = manifest.counts?.targets ?? manifest.results.length;
  const ok = manifest.counts?.succeeded ?? manifest.results.filter((r) => r.status === 'succeeded').length;
  const share =
    manifest.sourceShare === null
      ? 'nothing was shared'
      : manifest.sourceShare.revoked
        ? `source share revoked${leftText(manifest.sourceShare.left)}`
        : manifest.sourceShare.error
          ? `SOURCE STILL SHARED (${oneLine(JSON.stringify(manifest.sourceShare.error))}); remove it with ami-pipeline cleanup --input FILE`
          : `SOURCE STILL SHARED${leftText(manifest.sourceShare.left)}; remove it with ami-pipeline cleanup --input FILE`;
  const where = manifest.manifest ? `; manifest ${manifest.manifest.uri}` : '';
  return `${manifest.status}: ${ok} of ${total} target${total === 1 ? '' : 's'} succeeded, ${total - ok} failed; ${share} (execution ${manifest.executionName})${where}`;
}

/** What stays shared and why, in a few words: by hand, or for a running (or unknown) execution. */
export function leftText(left: NonNullable<Manifest['sourceShare']>['left']): string {
  const image = (left ?? []).filter((l) => l.resourceId.startsWith('ami-'));
  if (image.length === 0) return '';
  const why = (l: NonNullable<typeof left>[number]) =>
    l.reason === 'shared-by-hand'
      ? 'shared by hand'
      : l.reason === 'execution-running'
        ? `running execution ${l.executionName ?? '?'}`
        : `execution ${l.executionName ?? '?'} (${l.executionStatus ?? 'state unknown'})`;
  const parts = image.slice(0, 5).map((l) => `${l.accountId} (${why(l)})`);
  return `; still shared with ${parts.join(', ')}${image.length > 5 ? ` and ${image.length - 5} more` : ''}`;
}
