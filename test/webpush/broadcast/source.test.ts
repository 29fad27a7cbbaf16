// Unit tests of the in-process broadcast source (src/webpush/broadcast/source.ts): listeners hear changes only.
import { describe, expect, it } from 'vitest';
import { BroadcastVersions } from '../../../src/webpush/broadcast/source.js';

describe('BroadcastVersions', () => {
  it('reports only the versions that changed, to listeners still subscribed', () => {
    const source = new BroadcastVersions();
    const heard: Record<string, string>[] = [];
    const off = source.subscribe((changed) => heard.push(Object.fromEntries(changed)));
    source.update({ 'remote-settings/monitor_changes': 'v1', other: 'a' });
    source.update({ 'remote-settings/monitor_changes': 'v1', other: 'b' });
    source.update({ other: 'b' });
    off();
    source.update({ other: 'c' });
    expect(heard).toEqual([{ 'remote-settings/monitor_changes': 'v1', other: 'a' }, { other: 'b' }]);
    expect(Object.fromEntries(source.versions())).toEqual({ 'remote-settings/monitor_changes': 'v1', other: 'c' });
  });
});
