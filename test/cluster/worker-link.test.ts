import { describe, expect, it, vi } from 'vitest';
import { type Notification, openStore } from '../../src/store/index.js';
import type { ConnectedClient } from '../../src/webpush/connection/clients.js';
import { WorkerLink } from '../../src/cluster/worker.js';
import type { WorkerToPrimary } from '../../src/cluster/ipc.js';

/** A worker's side of the cluster IPC, with the primary replaced by a recorder and a real SQLite store: no processes, no sockets. */
function fakeClient(uaid: string, connectedAt: number, channels: string[], opts: { ready?: boolean } = {}) {
  const events: string[] = [];
  const client: ConnectedClient = {
    uaid,
    connectedAt,
    channels: new Map(channels.map((c) => [c, null])),
    deliverDirect(n, { onWritten } = {}) {
      if (opts.ready === false) return false;
      events.push(`deliver ${n.version}`);
      onWritten?.();
      return true;
    },
    storageChanged: () => events.push('storageChanged'),
    close: (code) => events.push(`close ${code}`),
  };
  return { client, events };
}

const note = (uaid: string, channelID: string): Notification => ({
  uaid,
  channelID,
  seq: 1,
  version: 'v1',
  ttl: 60,
  expiry: Date.now() + 60_000,
  topic: null,
  urgency: 'normal',
  data: null,
  headers: null,
  timestamp: Date.now(),
});

describe('WorkerLink', () => {
  it('reports every attach and detach of its registry to the primary', () => {
    const sent: WorkerToPrimary[] = [];
    const link = new WorkerLink((m) => sent.push(m));
    const { client } = fakeClient('a'.repeat(32), 5, []);
    link.clients.add(client);
    link.clients.remove(client);
    expect(sent).toEqual([
      { pg: 1, t: 'attach', uaid: 'a'.repeat(32), connectedAt: 5 },
      { pg: 1, t: 'detach', uaid: 'a'.repeat(32), connectedAt: 5 },
    ]);
  });

  it('answers forwarded pushes as the peer API does, saving them itself: delivered, stored, busy, absent, no-channel', async () => {
    const sent: WorkerToPrimary[] = [];
    const link = new WorkerLink((m) => sent.push(m));
    const store = (link.clients.store = await openStore('sqlite::memory:'));
    const ready = fakeClient('b'.repeat(32), 1, ['ch']);
    const busy = fakeClient('c'.repeat(32), 1, ['ch'], { ready: false });
    link.clients.add(ready.client);
    link.clients.add(busy.client);
    const answers = async (id: number, n: Notification) => {
      link.receive({ pg: 1, t: 'push', id, n });
      // The answer follows the holder's save (a group commit): wait for it, bounded.
      for (let i = 0; i < 200 && !sent.some((m) => m.t === 'answer' && m.id === id); i++) await new Promise((r) => setTimeout(r, 5));
      return sent.find((m) => m.t === 'answer' && m.id === id);
    };
    expect(await answers(1, note('b'.repeat(32), 'ch'))).toMatchObject({ v: 'delivered' });
    expect(ready.events).toEqual(['deliver v1']);
    expect(await answers(2, note('c'.repeat(32), 'ch'))).toMatchObject({ v: 'stored' });
    expect(busy.events).toEqual(['storageChanged']);
    expect(await answers(3, { ...note('c'.repeat(32), 'ch'), ttl: 0 })).toMatchObject({ v: 'busy' });
    expect(await answers(4, note('d'.repeat(32), 'ch'))).toMatchObject({ v: 'absent' });
    expect(await answers(5, note('b'.repeat(32), 'other'))).toMatchObject({ v: 'no-channel' });
    // This worker saved both TTL > 0 messages it answered for; the TTL 0 one is never stored.
    expect(await store.countMessages('b'.repeat(32), 10)).toBe(1);
    expect(await store.countMessages('c'.repeat(32), 10)).toBe(1);
    await store.close();
  });

  it('drops only an older connection, and rechecks storage only for the connection named', () => {
    const link = new WorkerLink(() => {});
    const c = fakeClient('e'.repeat(32), 100, []);
    link.clients.add(c.client);
    link.receive({ pg: 1, t: 'drop', uaid: 'e'.repeat(32), connectedAt: 50 });
    link.receive({ pg: 1, t: 'attached', uaid: 'e'.repeat(32), connectedAt: 99 });
    expect(c.events).toEqual([]);
    link.receive({ pg: 1, t: 'attached', uaid: 'e'.repeat(32), connectedAt: 100 });
    link.receive({ pg: 1, t: 'drop', uaid: 'e'.repeat(32), connectedAt: 200 });
    expect(c.events).toEqual(['storageChanged', 'close 1000']);
  });

  it('matches replies to requests, and a request never answered resolves to the safe default', async () => {
    const sent: WorkerToPrimary[] = [];
    const link = new WorkerLink((m) => sent.push(m));
    const pending = link.push(note('f'.repeat(32), 'ch'));
    const req = sent.find((m) => m.t === 'push') as { id: number };
    link.receive({ pg: 1, t: 'reply', id: req.id, v: 'delivered' });
    expect(await pending).toBe('delivered');
    // A late or unknown reply is ignored.
    link.receive({ pg: 1, t: 'reply', id: 999, v: 'delivered' });
    vi.useFakeTimers();
    try {
      const unanswered = link.push(note('f'.repeat(32), 'ch'));
      const notified = link.notify('f'.repeat(32));
      await vi.advanceTimersByTimeAsync(3000);
      // No answer in time: the caller treats the client as absent and stores the message.
      expect(await unanswered).toBe('absent');
      expect(await notified).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
  it('asks the primary about storage changes, takeovers and metrics, and answers its notify', async () => {
    const sent: WorkerToPrimary[] = [];
    const link = new WorkerLink((m) => sent.push(m));
    const held = fakeClient('g'.repeat(32), 7, []);
    link.clients.add(held.client);
    // Storage changed for a uaid: the local client looks again, and the holder elsewhere (if any) is told.
    link.clients.storageChanged('g'.repeat(32));
    expect(held.events).toEqual(['storageChanged']);
    expect(sent.at(-1)).toMatchObject({ pg: 1, t: 'notify', uaid: 'g'.repeat(32) });
    link.dropOlder('g'.repeat(32), 9);
    expect(sent.at(-1)).toEqual({ pg: 1, t: 'drop', uaid: 'g'.repeat(32), connectedAt: 9 });
    const text = link.metrics();
    const req = sent.at(-1) as { t: string; id: number };
    expect(req.t).toBe('metrics');
    link.receive({ pg: 1, t: 'reply', id: req.id, v: 'up 1\n' });
    expect(await text).toBe('up 1\n');
    link.receive({ pg: 1, t: 'notify', id: 70, uaid: 'g'.repeat(32) });
    link.receive({ pg: 1, t: 'notify', id: 71, uaid: 'h'.repeat(32) });
    expect(sent.slice(-2)).toEqual([
      { pg: 1, t: 'answer', id: 70, v: true },
      { pg: 1, t: 'answer', id: 71, v: false },
    ]);
    expect(held.events).toEqual(['storageChanged', 'storageChanged']);
  });
});
