import { describe, expect, it } from 'vitest';
import { ClientDirectory, supersedes } from '../../src/cluster/directory.js';

/** A worker's replica of its siblings' clients: the takeover rules, without processes. */
describe('ClientDirectory', () => {
  it('records the holder and forgets it on detach of the same connection only', () => {
    const d = new ClientDirectory();
    d.attach('u', 1, 100);
    expect(d.get('u')).toEqual({ worker: 1, connectedAt: 100 });
    d.detach('u', 1, 99);
    expect(d.get('u')?.worker).toBe(1);
    d.detach('u', 1, 100);
    expect(d.get('u')).toBeUndefined();
  });

  it('keeps the newest connection whatever order the attaches arrive in', () => {
    const inOrder = new ClientDirectory();
    inOrder.attach('u', 1, 100);
    inOrder.attach('u', 2, 200);
    const reversed = new ClientDirectory();
    reversed.attach('u', 2, 200);
    reversed.attach('u', 1, 100);
    expect(inOrder.get('u')).toEqual({ worker: 2, connectedAt: 200 });
    expect(reversed.get('u')).toEqual({ worker: 2, connectedAt: 200 });
    // The old connection's detach, arriving late, leaves the new holder alone.
    inOrder.detach('u', 1, 100);
    expect(inOrder.get('u')?.worker).toBe(2);
  });

  it('a reconnect on the same worker replaces its entry', () => {
    const d = new ClientDirectory();
    d.attach('u', 3, 100);
    d.attach('u', 3, 150);
    d.detach('u', 3, 100);
    expect(d.get('u')).toEqual({ worker: 3, connectedAt: 150 });
  });

  it('a silent worker holds nothing', () => {
    const d = new ClientDirectory();
    d.attach('a', 1, 1);
    d.attach('b', 2, 1);
    d.forgetWorker(1);
    expect(d.get('a')).toBeUndefined();
    expect(d.get('b')?.worker).toBe(2);
    expect(d.size).toBe(1);
  });

  it('the newest hello wins; a tie goes to the higher worker index, so every worker decides alike', () => {
    expect(supersedes({ worker: 1, connectedAt: 2 }, { worker: 2, connectedAt: 1 })).toBe(true);
    expect(supersedes({ worker: 2, connectedAt: 1 }, { worker: 1, connectedAt: 2 })).toBe(false);
    expect(supersedes({ worker: 2, connectedAt: 5 }, { worker: 1, connectedAt: 5 })).toBe(true);
    expect(supersedes({ worker: 1, connectedAt: 5 }, { worker: 2, connectedAt: 5 })).toBe(false);
  });
});
