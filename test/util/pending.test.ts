/** PendingRequests: each request settled once, by its answer, its timer or its caller; ids stay within the frames' u32. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeFrame } from '../../src/cluster/frames.js';
import { PendingRequests } from '../../src/util/pending.js';

describe('PendingRequests', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('settles a request once: the answer, else the timer with what the entry says, else the caller', async () => {
    vi.useFakeTimers();
    const pending = new PendingRequests<{ to: number; written: boolean }>(1000);
    const ids: number[] = [];
    const timedOut = (e: { written: boolean }) => (e.written ? 'unanswered' : 'absent');
    const answered = pending.start({ to: 1, written: true }, timedOut, (id) => ids.push(id));
    const silent = pending.start({ to: 1, written: true }, timedOut, (id) => ids.push(id));
    const unsent = pending.start({ to: 1, written: false }, timedOut, (id) => ids.push(id));
    const dropped = pending.start({ to: 2, written: true }, timedOut, (id) => ids.push(id));
    expect(new Set(ids).size).toBe(4);
    pending.settle(ids[0]!, 'delivered');
    pending.settle(ids[0]!, 'stored');
    pending.settleWhere(
      (e) => e.to === 2,
      () => 'link down',
    );
    expect(pending.get(ids[3]!)).toBeUndefined();
    expect(pending.get(ids[1]!)).toEqual({ to: 1, written: true });
    vi.advanceTimersByTime(1000);
    expect(await Promise.all([answered, silent, unsent, dropped])).toEqual(['delivered', 'unanswered', 'absent', 'link down']);
    // A request settled in its own send (nothing could be sent) is answered at once.
    expect(await pending.start({ to: 3, written: false }, timedOut, (id) => pending.settle(id, 'not sent'))).toBe('not sent');
  });

  it('wraps its ids within the u32 the frames carry, never 0', () => {
    vi.useFakeTimers();
    const pending = new PendingRequests<null>(1000);
    (pending as unknown as { nextId: number }).nextId = 0xffffffff;
    const ids: number[] = [];
    for (let i = 0; i < 2; i++)
      void pending.start(
        null,
        () => null,
        (id) => ids.push(id),
      );
    expect(ids).toEqual([0xffffffff, 1]);
    for (const id of ids) expect(() => encodeFrame({ t: 'notify', id, uaid: 'a' })).not.toThrow();
    expect(() => encodeFrame({ t: 'notify', id: 0x100000000, uaid: 'a' })).toThrow(RangeError);
  });
});
