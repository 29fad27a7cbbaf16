import { describe, expect, it } from 'vitest';
import { ClientDirectory } from '../../src/cluster/directory.js';

/** The primary's uaid → worker directory: the takeover rules, without processes. */
describe('ClientDirectory', () => {
  it('records the holder and forgets it on detach of the same connection only', () => {
    const d = new ClientDirectory();
    expect(d.attach('u', 1, 100)).toBeNull();
    expect(d.holder('u')).toBe(1);
    d.detach('u', 1, 99);
    expect(d.holder('u')).toBe(1);
    d.detach('u', 1, 100);
    expect(d.holder('u')).toBeUndefined();
  });

  it('a newer connection on another worker takes over and the older worker is told to drop it', () => {
    const d = new ClientDirectory();
    d.attach('u', 1, 100);
    expect(d.attach('u', 2, 200)).toEqual({ worker: 1, olderThan: 200 });
    expect(d.holder('u')).toBe(2);
    // The old connection's detach, arriving late, leaves the new holder alone.
    d.detach('u', 1, 100);
    expect(d.holder('u')).toBe(2);
  });

  it('a late attach of an older connection is the one dropped', () => {
    const d = new ClientDirectory();
    d.attach('u', 2, 200);
    expect(d.attach('u', 1, 100)).toEqual({ worker: 1, olderThan: 200 });
    expect(d.holder('u')).toBe(2);
  });

  it('a dead worker holds nothing', () => {
    const d = new ClientDirectory();
    d.attach('a', 1, 1);
    d.attach('b', 2, 1);
    d.forgetWorker(1);
    expect(d.holder('a')).toBeUndefined();
    expect(d.holder('b')).toBe(2);
    expect(d.size).toBe(1);
  });
});
