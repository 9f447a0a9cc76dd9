import { describe, expect, it } from 'vitest';
import { formatDuration, ProgressTracker, targetOf, targetsOfInput, type StateEvent } from '../../cli/progress';
import { liveLines, manifestTable, plainLine, progressBar } from '../../cli/render';
import { stubManifest, STUB_INPUT } from '../support/cli';

const item = (accountId: string, region = 'eu-west-1') => ({ item: { target: { accountId, region, kmsKey: 'alias/k', subnetId: null } } });
const entered = (stateName: string, input: unknown, at: number): StateEvent => ({ kind: 'entered', stateName, input, at });
const exited = (stateName: string, output: unknown, at: number): StateEvent => ({ kind: 'exited', stateName, output, at });

describe('the progress tracker', () => {
  it('queues every account × region pair of the input', () => {
    const tracker = new ProgressTracker(targetsOfInput(STUB_INPUT), () => 0);
    expect(tracker.targets().map((t) => [t.accountId, t.region, t.phase])).toEqual([
      ['111111111111', 'eu-west-1', 'queued'],
      ['222222222222', 'eu-west-1', 'queued'],
    ]);
    expect(tracker.counts()).toEqual({ finished: 0, done: 0, failed: 0, total: 2 });
  });

  it('moves a target through copying, granting and verifying to done, with its elapsed time', () => {
    const tracker = new ProgressTracker([{ accountId: '111111111111', region: 'eu-west-1' }], () => 100_000);
    const phases = [
      tracker.apply(entered('IsRekeyTarget', item('111111111111'), 10_000)),
      tracker.apply(entered('CopyEncryptImage', item('111111111111'), 10_000)),
      tracker.apply(entered('WaitForImage', item('111111111111'), 20_000)),
      tracker.apply(entered('GetImageState', item('111111111111'), 30_000)),
      tracker.apply(entered('CreateKmsGrant', item('111111111111'), 40_000)),
      tracker.apply(entered('StartLaunchCheck', item('111111111111'), 50_000)),
      tracker.apply(entered('CleanUpLaunchCheck', item('111111111111'), 70_000)),
      tracker.apply({ kind: 'exited', stateName: 'RecordTargetSuccess', output: { accountId: '111111111111', region: 'eu-west-1', status: 'succeeded' }, at: 85_000 }),
    ].map((c) => c?.target?.phase);
    expect(phases).toEqual(['checking', 'copying', undefined, undefined, 'granting', 'verifying', undefined, 'done']);
    const [target] = tracker.targets();
    expect(target && tracker.elapsed(target)).toBe(75_000);
    expect(tracker.counts()).toMatchObject({ finished: 1, done: 1 });
  });

  it('marks a target failed on its failure path, with the error name, and moves it on only when a redrive runs it again', () => {
    const tracker = new ProgressTracker([], () => 0);
    tracker.apply(entered('CreateKmsGrant', item('222222222222'), 1_000));
    const failed = tracker.apply(entered('FindTargetCopy', { ...item('222222222222'), error: { Error: 'GrantFailedError', Cause: '...' } }, 5_000));
    expect(failed).toMatchObject({ target: { phase: 'failed', error: 'GrantFailedError', endedAt: 5_000 }, at: 5_000 });
    expect(tracker.apply(entered('CleanUpFailedTarget', item('222222222222'), 6_000))).toBeUndefined();
    expect(tracker.apply(exited('RecordTargetSuccess', { accountId: '222222222222', region: 'eu-west-1', status: 'succeeded' }, 6_500))).toBeUndefined();
    expect(tracker.targets()[0]?.phase).toBe('failed');
    // A redrive retries the failed target: its child starts again.
    expect(tracker.apply(entered('CopyEncryptImage', item('222222222222'), 7_000))).toMatchObject({ target: { phase: 'copying', endedAt: null } });
  });

  it('adds targets as they are first seen when the input names none (targetsParameter)', () => {
    const tracker = new ProgressTracker(targetsOfInput({ source: {}, targetsParameter: '/ami-pipeline/targets' }));
    expect(tracker.targets()).toEqual([]);
    tracker.apply(entered('CopyEncryptImage', item('333333333333', 'us-east-1'), 1));
    tracker.apply(entered('CopyEncryptImage', item('333333333333', 'eu-west-1'), 2));
    expect(tracker.targets().map((t) => `${t.accountId}/${t.region}:${t.phase}`)).toEqual(['333333333333/us-east-1:copying', '333333333333/eu-west-1:copying']);
  });

  it('follows the run as a whole through its top-level states', () => {
    const tracker = new ProgressTracker();
    expect(tracker.apply(entered('ResolveSource', STUB_INPUT, 1))).toEqual({ stage: 'resolving the source image' });
    expect(tracker.apply(entered('DistributeTargets', {}, 2))).toEqual({ stage: 'copying to the targets' });
    expect(tracker.apply(entered('UnshareSource', {}, 3))).toEqual({ stage: 'revoking the source share' });
  });

  it('lets the manifest decide the final phase of every target', () => {
    const tracker = new ProgressTracker(targetsOfInput(STUB_INPUT), () => 9_000);
    tracker.apply(entered('CreateKmsGrant', item('111111111111'), 1_000));
    const changes = tracker.applyManifest(stubManifest(true));
    expect(changes.map((c) => [c.target?.accountId, c.target?.phase, c.target?.error])).toEqual([
      ['111111111111', 'done', null],
      ['222222222222', 'failed', 'LaunchFailedError'],
    ]);
    expect(tracker.counts()).toEqual({ finished: 2, done: 1, failed: 1, total: 2 });
  });

  it('reads the target from a state input or a result line, and nothing else', () => {
    expect(targetOf(item('111111111111'))).toEqual({ accountId: '111111111111', region: 'eu-west-1' });
    expect(targetOf({ accountId: '111111111111', region: 'us-east-1', status: 'failed' })).toEqual({ accountId: '111111111111', region: 'us-east-1' });
    expect(targetOf({ source: { accountId: '1', region: 'eu-west-1' } })).toBeUndefined();
    expect(targetOf('text')).toBeUndefined();
  });
});

describe('the views', () => {
  it('draws a progress bar and formats durations', () => {
    expect(progressBar(3, 6, 10)).toBe('[#####-----] 3/6');
    expect(progressBar(0, 0, 4)).toBe('[----] 0/0');
    expect([formatDuration(0), formatDuration(12_400), formatDuration(65_000), formatDuration(3_725_000)]).toEqual(['0s', '12s', '1m 05s', '1h 02m']);
  });

  it('writes one plain line per change and a block for the in-place view', () => {
    const tracker = new ProgressTracker(targetsOfInput(STUB_INPUT), () => 20_000);
    const change = tracker.apply(entered('CopyEncryptImage', item('111111111111'), 0));
    tracker.apply(entered('CreateKmsGrant', item('111111111111'), 12_000));
    expect(change && plainLine(tracker, change)).toBe('111111111111 eu-west-1 copying (0s)');
    const lines = liveLines(tracker, 'ami-pipeline', 20_000);
    expect(lines[1]).toBe('[--------------------] 0/2 targets finished');
    expect(lines[2]).toMatch(/^ {2}111111111111 {2}eu-west-1 +granting +20s$/);
    expect(lines[3]).toMatch(/^ {2}222222222222 {2}eu-west-1 +queued\s*$/);
  });

  it('cuts a long error in the table and prints it in full below', () => {
    const table = manifestTable(stubManifest(true), 150);
    const row = table.split('\n').find((l) => l.startsWith('222222222222'));
    expect(row?.length).toBe(150);
    expect(row).toMatch(/LaunchFailedError: Launch check.*…$/);
    expect(table).toContain('Errors:\n  222222222222 eu-west-1: LaunchFailedError: Launch check in 222222222222/eu-west-1');
  });
});
