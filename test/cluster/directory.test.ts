import { describe, expect, it } from 'vitest';
import { ClientDirectory, REPLICATED_UP_TO, directoryLayout, partitionOwner, supersedes } from '../../src/cluster/directory.js';
import { newUaid } from '../../src/webpush/protocol/ids.js';

describe('directory layout', () => {
  it('auto replicates up to REPLICATED_UP_TO workers and partitions above; either can be asked for', () => {
    expect(REPLICATED_UP_TO).toBe(8);
    expect(directoryLayout('auto', 2)).toBeNull();
    expect(directoryLayout('auto', REPLICATED_UP_TO)).toBeNull();
    expect(directoryLayout('auto', REPLICATED_UP_TO + 1)).toBeTypeOf('function');
    expect(directoryLayout('replicated', 64)).toBeNull();
    expect(directoryLayout('partitioned', 2)).toBeTypeOf('function');
  });

  it('names one owner in 1..workers for each uaid, the same on every worker, spread evenly over random uaids', () => {
    const owner = partitionOwner(4);
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[owner(newUaid())]!++;
    expect(counts[0]).toBe(0);
    // 5,000 expected each; a binomial's spread at 20,000 draws is about ±61, so ±400 is far beyond chance.
    for (const c of counts.slice(1)) expect(Math.abs(c - 5000)).toBeLessThan(400);
    const u = newUaid();
    expect(partitionOwner(4)(u)).toBe(owner(u));
    expect(partitionOwner(1)(u)).toBe(1);
  });
});

/** A worker's part of the directory of its siblings' clients: the takeover rules, without processes. */
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
