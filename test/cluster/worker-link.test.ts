import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Notification, type Store, openStore } from '../../src/store/index.js';
import type { ConnectedClient } from '../../src/webpush/connection/clients.js';
import { type MeshPort, WorkerLink } from '../../src/cluster/worker.js';
import type { PeerFrame } from '../../src/cluster/frames.js';
import type { WorkerToPrimary } from '../../src/cluster/ipc.js';
import { testNotification } from '../helpers/push.js';

/**
 * A worker's side of the cluster (src/cluster/worker.ts) with its mesh replaced by an in-process switchboard: links
 * of several "workers" in one process, frames delivered in order on the next microtask (as a socket would, later),
 * links cut and restored at will. No processes, no sockets.
 */
/** The machine's shared store (one SQLite file in production), fresh for each test: the holder saves what it takes. */
let machineStore: Store;
beforeEach(async () => {
  machineStore = await openStore('sqlite::memory:');
});
afterEach(async () => {
  await machineStore.close();
});

class Switchboard {
  readonly links = new Map<number, WorkerLink>();
  readonly sent: { from: number; to: number; f: PeerFrame }[] = [];
  readonly primary: WorkerToPrimary[] = [];
  private readonly cut = new Set<string>();
  private queue: Promise<void> = Promise.resolve();

  add(index: number): WorkerLink {
    const port: MeshPort = {
      send: (to, f) => {
        if (!this.links.has(to) || this.cut.has(`${index}>${to}`)) return false;
        this.sent.push({ from: index, to, f });
        this.queue = this.queue.then(() => this.links.get(to)?.receive(index, f));
        return true;
      },
      siblings: () => [...this.links.keys()].filter((to) => to !== index && !this.cut.has(`${index}>${to}`)),
    };
    const link = new WorkerLink(index, port, (m) => this.primary.push(m));
    link.clients.store = machineStore;
    this.links.set(index, link);
    return link;
  }

  /** Everything sent so far has been received. */
  async settled(): Promise<void> {
    let last;
    do {
      last = this.queue;
      await last;
      await new Promise((r) => setImmediate(r));
    } while (last !== this.queue);
  }

  /** Cuts the link a → b as a dying connection would: a's requests to b end, b forgets a's clients. */
  cutLink(a: number, b: number): void {
    this.cut.add(`${a}>${b}`);
    this.links.get(a)!.linkDown(b);
    this.links.get(b)!.siblingSilent(a);
  }

  restore(a: number, b: number): void {
    this.cut.delete(`${a}>${b}`);
    this.links.get(a)!.linkUp(b);
  }
}

function fakeClient(uaid: string, connectedAt: number, channels: string[], opts: { ready?: boolean } = {}) {
  const events: string[] = [];
  const client: ConnectedClient = {
    uaid,
    connectedAt,
    channels: new Map(channels.map((c) => [c, null])),
    deliverDirect(n, { onWritten, save } = {}) {
      if (opts.ready === false) return false;
      events.push(`deliver ${n.version}`);
      // As a session with no ack-delay estimate yet: the save begins at once.
      void save?.begin();
      onWritten?.();
      return true;
    },
    storageChanged: () => events.push('storageChanged'),
    close: (code) => events.push(`close ${code}`),
  };
  return { client, events };
}

const UA = (c: string) => c.repeat(32);
const note = (uaid: string, channelID = 'ch'): Notification => testNotification({ uaid, channelID, seq: 1 });

describe('WorkerLink', () => {
  it('tells every sibling of each attach and detach, and no one else', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    board.add(2);
    board.add(3);
    const { client } = fakeClient(UA('a'), 5, []);
    one.clients.add(client);
    one.clients.remove(client);
    await board.settled();
    expect(board.sent.map((s) => `${s.from}>${s.to} ${s.f.t}`)).toEqual(['1>2 attach', '1>3 attach', '1>2 detach', '1>3 detach']);
    expect(board.links.get(2)!.siblingClients).toBe(0);
    expect(board.primary).toEqual([]);
  });

  it('hands a push straight to the holder, which saves it and answers as the peer link does: delivered, stored, busy, absent, no-channel', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    const ready = fakeClient(UA('b'), 1, ['ch']);
    const busy = fakeClient(UA('c'), 1, ['ch'], { ready: false });
    two.clients.add(ready.client);
    two.clients.add(busy.client);
    await board.settled();
    expect(one.siblingClients).toBe(2);
    expect(await one.push(note(UA('b')))).toBe('delivered');
    expect(ready.events).toEqual(['deliver v1']);
    // A client that reads from storage: the holder saves the message and tells its session.
    expect(await one.push(note(UA('c')))).toBe('stored');
    expect(busy.events).toEqual(['storageChanged']);
    // TTL 0 is never stored: not saved there, the endpoint drops it.
    expect(await one.push({ ...note(UA('c')), ttl: 0 })).toBe('busy');
    expect(await one.push(note(UA('b'), 'other'))).toBe('no-channel');
    // Nobody holds it: answered at once, without a frame.
    const before = board.sent.length;
    expect(await one.push(note(UA('d')))).toBe('absent');
    expect(board.sent.length).toBe(before);
    // A stale entry (the client left, its detach not yet seen): the holder answers absent.
    one.receive(2, { t: 'attach', uaid: UA('z'), connectedAt: 1 });
    expect(await one.push(note(UA('z')))).toBe('absent');
    expect(board.sent.at(-1)).toMatchObject({ from: 2, to: 1, f: { t: 'answer', v: 'absent' } });
    // Worker 2 saved both TTL > 0 messages it answered for.
    expect(await machineStore.countMessages(UA('b'), 10)).toBe(1);
    expect(await machineStore.countMessages(UA('c'), 10)).toBe(1);
  });

  it('notifies the holder of stored messages; a sibling holding nothing answers false', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    const held = fakeClient(UA('e'), 7, []);
    two.clients.add(held.client);
    await board.settled();
    // Storage changed for a uaid: the local client (none here) and the holder elsewhere are told.
    one.clients.storageChanged(UA('e'));
    await board.settled();
    expect(held.events).toEqual(['storageChanged']);
    expect(await one.notify(UA('e'))).toBe(true);
    expect(await one.notify(UA('f'))).toBe(false);
  });

  it('a notify that found no holder has the client that attaches next look at storage again, once', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    expect(await one.notify(UA('g'))).toBe(false);
    const c = fakeClient(UA('g'), 50, []);
    two.clients.add(c.client);
    await board.settled();
    expect(c.events).toEqual(['storageChanged']);
    two.clients.remove(c.client);
    const again = fakeClient(UA('g'), 60, []);
    two.clients.add(again.client);
    await board.settled();
    expect(again.events).toEqual([]);
  });

  it('a notify answered false by a stale holder counts as a miss for the connection attaching on a third worker', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    board.add(2);
    const three = board.add(3);
    one.receive(2, { t: 'attach', uaid: UA('p'), connectedAt: 1 });
    expect(await one.notify(UA('p'))).toBe(false);
    const c = fakeClient(UA('p'), 80, []);
    three.clients.add(c.client);
    await board.settled();
    expect(c.events).toEqual(['storageChanged']);
  });

  it('a recheck that cannot be sent (the link to the holder is down) is sent once the link is back', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    board.cutLink(1, 2);
    expect(await one.notify(UA('g'))).toBe(false);
    const c = fakeClient(UA('g'), 70, []);
    two.clients.add(c.client);
    await board.settled();
    expect(c.events).toEqual([]);
    board.restore(1, 2);
    await board.settled();
    expect(c.events).toEqual(['storageChanged']);
  });

  it('the older connection of a uaid held on two workers is closed, whichever attach each sees first', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    const older = fakeClient(UA('h'), 100, []);
    const newer = fakeClient(UA('h'), 200, []);
    // Both attach before either hears of the other.
    one.clients.add(older.client);
    two.clients.add(newer.client);
    await board.settled();
    expect(older.events).toEqual(['close 1000']);
    expect(newer.events).toEqual([]);
    // The newer attaching where the older one's attach was already seen.
    const late = fakeClient(UA('i'), 300, []);
    const early = fakeClient(UA('i'), 400, []);
    two.clients.add(early.client);
    await board.settled();
    one.clients.add(late.client);
    await board.settled();
    expect(late.events).toEqual(['close 1000']);
    expect(early.events).toEqual([]);
  });

  it('a drop from another machine reaches the holder, which closes only an older connection', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    const c = fakeClient(UA('j'), 100, []);
    two.clients.add(c.client);
    await board.settled();
    one.dropOlder(UA('j'), 50);
    await board.settled();
    expect(c.events).toEqual([]);
    one.dropOlder(UA('j'), 200);
    await board.settled();
    expect(c.events).toEqual(['close 1000']);
  });

  it('a sibling that restarts learns every client held here; a silent one is forgotten', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    one.clients.add(fakeClient(UA('k'), 1, ['ch']).client);
    two.clients.add(fakeClient(UA('l'), 1, ['ch']).client);
    await board.settled();
    board.cutLink(2, 1);
    expect(one.siblingClients).toBe(0);
    expect(await one.push(note(UA('l')))).toBe('absent');
    board.restore(2, 1);
    await board.settled();
    expect(one.siblingClients).toBe(1);
    expect(await one.push(note(UA('l')))).toBe('delivered');
  });

  it('a request the holder never answers, or whose link goes down, resolves to the safe default', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const two = board.add(2);
    two.clients.add(fakeClient(UA('m'), 1, ['ch']).client);
    await board.settled();
    // The holder's link is down before the frame is sent: absent at once.
    board.cutLink(1, 2);
    expect(await one.push(note(UA('m')))).toBe('absent');
    board.restore(1, 2);
    // A frame sent, then the link goes down before the answer.
    const pending = one.push(note(UA('m')));
    board.cutLink(1, 2);
    expect(await pending).toBe('absent');
    vi.useFakeTimers();
    try {
      const lonely = new WorkerLink(1, { send: () => true, siblings: () => [2] }, () => {});
      lonely.receive(2, { t: 'attach', uaid: UA('n'), connectedAt: 1 });
      const unanswered = lonely.push(note(UA('n')));
      const notified = lonely.notify(UA('n'));
      await vi.advanceTimersByTimeAsync(3000);
      // No answer in time: the caller treats the client as absent and stores the message.
      expect(await unanswered).toBe('absent');
      expect(await notified).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('asks the primary for the aggregated metrics, and matches its reply', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const text = one.metrics();
    const req = board.primary.at(-1)!;
    expect(req).toMatchObject({ pg: 1, t: 'metrics' });
    one.fromPrimary({ pg: 1, t: 'reply', id: 999, v: 'stale' });
    one.fromPrimary({ pg: 1, t: 'reply', id: req.id, v: 'up 1\n' });
    expect(await text).toBe('up 1\n');
  });
});
