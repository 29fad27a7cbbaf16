import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Notification, type Store, openStore } from '../../src/store/index.js';
import type { ConnectedClient } from '../../src/webpush/connection/clients.js';
import { type MeshPort, WorkerLink } from '../../src/cluster/worker.js';
import { partitionOwner } from '../../src/cluster/directory.js';
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

  add(index: number, layout: ConstructorParameters<typeof WorkerLink>[3] = {}): WorkerLink {
    const port: MeshPort = {
      send: (to, f) => {
        if (!this.links.has(to) || this.cut.has(`${index}>${to}`)) return false;
        this.sent.push({ from: index, to, f });
        this.queue = this.queue.then(() => this.links.get(to)?.receive(index, f));
        return true;
      },
      siblings: () => [...this.links.keys()].filter((to) => to !== index && !this.cut.has(`${index}>${to}`)),
    };
    const link = new WorkerLink(index, port, (m) => this.primary.push(m), layout);
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

  it('a notify that found no holder has each connection whose hello began before it look at storage again', async () => {
    let clock = 1000;
    const board = new Switchboard();
    const one = board.add(1, { now: () => clock });
    const two = board.add(2, { now: () => clock });
    expect(await one.notify(UA('g'))).toBe(false);
    const c = fakeClient(UA('g'), 1000, []);
    two.clients.add(c.client);
    await board.settled();
    expect(c.events).toEqual(['storageChanged']);
    // Not spent on that attach: its connection may be gone already, and an older hello's may come next.
    two.clients.remove(c.client);
    const earlier = fakeClient(UA('g'), 990, []);
    two.clients.add(earlier.client);
    await board.settled();
    expect(earlier.events).toEqual(['storageChanged']);
    // A hello after the miss read storage after the message was saved: no second read.
    two.clients.remove(earlier.client);
    const later = fakeClient(UA('g'), 1001, []);
    two.clients.add(later.client);
    await board.settled();
    expect(later.events).toEqual([]);
    // Past the miss's window, nothing is remembered.
    clock += 60_000;
    two.clients.remove(later.client);
    const late = fakeClient(UA('g'), 999, []);
    two.clients.add(late.client);
    await board.settled();
    expect(late.events).toEqual([]);
  });

  it('keeps the latest miss when a stale holder answers an earlier notify after it', async () => {
    let clock = 100;
    const board = new Switchboard();
    const one = board.add(1, { now: () => clock });
    const two = board.add(2, { now: () => clock });
    // An entry naming a connection on worker 2 that is gone: the notify goes there and is answered false, later.
    one.receive(2, { t: 'attach', uaid: UA('s'), connectedAt: 1 });
    const first = one.notify(UA('s'));
    // Meanwhile that connection's detach arrives, and a later message's notify finds no holder at once.
    one.receive(2, { t: 'detach', uaid: UA('s'), connectedAt: 1 });
    clock = 200;
    expect(await one.notify(UA('s'))).toBe(false);
    expect(await first).toBe(false);
    // A connection whose hello began between the two notifies may have read storage before the later message.
    const c = fakeClient(UA('s'), 150, []);
    two.clients.add(c.client);
    await board.settled();
    expect(c.events).toEqual(['storageChanged']);
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

  it('announces an entry per client on every other worker', () => {
    const board = new Switchboard();
    const one = board.add(1, { workers: 3 });
    one.clients.add(fakeClient(UA('q'), 1, []).client);
    one.clients.add(fakeClient(UA('r'), 1, []).client);
    expect(one.announced()).toBe(4);
  });

  it('counts its links to siblings that are not up: none once the mesh is whole', () => {
    const board = new Switchboard();
    const [one] = [1, 2, 3].map((i) => board.add(i, { workers: 3 }));
    expect(one!.linksDown()).toBe(0);
    board.cutLink(1, 2);
    expect(one!.linksDown()).toBe(1);
    board.restore(1, 2);
    expect(one!.linksDown()).toBe(0);
    // A sibling not started yet: its link is not up either.
    expect(new Switchboard().add(1, { workers: 3 }).linksDown()).toBe(2);
  });

  it('asks the primary for the aggregated metrics, and matches its reply', async () => {
    const board = new Switchboard();
    const one = board.add(1);
    const text = one.metrics();
    const req = board.primary.at(-1)!;
    expect(req).toMatchObject({ pg: 1, t: 'metrics' });
    if (req.t !== 'metrics') throw new Error(`the link asked the primary for ${req.t}`);
    one.fromPrimary({ pg: 1, t: 'reply', id: 999, v: 'stale' });
    one.fromPrimary({ pg: 1, t: 'reply', id: req.id, v: 'up 1\n' });
    expect(await text).toBe('up 1\n');
  });
});

/**
 * The partitioned directory (PUSHGATE_WORKER_DIRECTORY=partitioned, or auto above 8 workers): three workers, each
 * uaid's entry on one owner. Uaids are picked by owner, so every path is exercised on purpose.
 */
describe('WorkerLink, partitioned directory', () => {
  const WORKERS = 3;
  const ownerOf = partitionOwner(WORKERS);
  let next = 0;
  /** A fresh uaid (32 hex digits) whose entry worker `owner` keeps. */
  function ownedBy(owner: number): string {
    for (;;) {
      const u = (next++).toString(16).padStart(32, '0');
      if (ownerOf(u) === owner) return u;
    }
  }
  function board3() {
    const board = new Switchboard();
    const links = [1, 2, 3].map((i) => board.add(i, { ownerOf, workers: WORKERS }));
    return { board, one: links[0]!, two: links[1]!, three: links[2]! };
  }
  const trace = (board: Switchboard, from = 0) => board.sent.slice(from).map((s) => `${s.from}>${s.to} ${s.f.t}`);

  it("sends each attach and detach to the uaid's owner only, and none when the holder owns it", async () => {
    const { board, one, two, three } = board3();
    const elsewhere = fakeClient(ownedBy(2), 5, []);
    const own = fakeClient(ownedBy(1), 5, []);
    one.clients.add(elsewhere.client);
    one.clients.add(own.client);
    await board.settled();
    expect(two.siblingClients).toBe(1);
    expect(three.siblingClients).toBe(0);
    // Of worker 1's two clients, one has its entry on a sibling.
    expect(one.announced()).toBe(1);
    one.clients.remove(elsewhere.client);
    one.clients.remove(own.client);
    await board.settled();
    expect(trace(board)).toEqual(['1>2 attach', '1>2 detach']);
    expect(two.siblingClients).toBe(0);
  });

  it('a push that lands on neither holder nor owner goes through the owner; the owner and the holder answer at first hand', async () => {
    const { board, one, two, three } = board3();
    const u = ownedBy(2);
    const held = fakeClient(u, 1, ['ch']);
    three.clients.add(held.client);
    await board.settled();
    let mark = board.sent.length;
    expect(await one.push(note(u))).toBe('delivered');
    expect(trace(board, mark)).toEqual(['1>2 push', '2>3 push', '3>2 answer', '2>1 answer']);
    expect(held.events).toEqual(['deliver v1']);
    // From the owner: straight to the holder.
    mark = board.sent.length;
    expect(await two.push(note(u))).toBe('delivered');
    expect(trace(board, mark)).toEqual(['2>3 push', '3>2 answer']);
    // A wrong channel is the holder's answer, passed back as it is.
    expect(await one.push(note(u, 'other'))).toBe('no-channel');
    // Held by its owner: one hop.
    const v = ownedBy(2);
    two.clients.add(fakeClient(v, 1, ['ch']).client);
    mark = board.sent.length;
    expect(await one.push(note(v))).toBe('delivered');
    expect(trace(board, mark)).toEqual(['1>2 push', '2>1 answer']);
  });

  it('a push for a client connected nowhere costs one hop to its owner, none on the owner itself', async () => {
    const { board, one, two } = board3();
    const u = ownedBy(2);
    let mark = board.sent.length;
    expect(await one.push(note(u))).toBe('absent');
    expect(trace(board, mark)).toEqual(['1>2 push', '2>1 answer']);
    mark = board.sent.length;
    expect(await two.push(note(u))).toBe('absent');
    expect(trace(board, mark)).toEqual([]);
    // An owner's entry naming the asker itself (stale: the asker checked its own clients first) is not sent back.
    two.receive(1, { t: 'attach', uaid: u, connectedAt: 1 });
    mark = board.sent.length;
    expect(await one.push(note(u))).toBe('absent');
    expect(trace(board, mark)).toEqual(['1>2 push', '2>1 answer']);
  });

  it('a notify goes through the owner to the holder; a miss there has the client attaching next look at storage again', async () => {
    const { board, one, two, three } = board3();
    const u = ownedBy(2);
    const held = fakeClient(u, 1, []);
    three.clients.add(held.client);
    await board.settled();
    expect(await one.notify(u)).toBe(true);
    expect(held.events).toEqual(['storageChanged']);
    // Nobody holds w yet: the owner remembers the miss, and the attach that reaches it next triggers a recheck.
    const w = ownedBy(2);
    expect(await one.notify(w)).toBe(false);
    const late = fakeClient(w, 50, []);
    three.clients.add(late.client);
    await board.settled();
    expect(late.events).toEqual(['storageChanged']);
    // Held by the notifier itself: it told its own client; the owner does not send it back.
    const x = ownedBy(2);
    const mine = fakeClient(x, 1, []);
    one.clients.add(mine.client);
    await board.settled();
    const mark = board.sent.length;
    one.clients.storageChanged(x);
    await board.settled();
    expect(mine.events).toEqual(['storageChanged']);
    expect(trace(board, mark)).toEqual(['1>2 notify', '2>1 answer']);
    expect(two.siblingClients).toBe(3);
  });

  /**
   * Two connections of one fresh uaid whose entry worker 2 owns: `first` is added, then (after every frame has
   * arrived when `apart`, else before any has) `second`. Each is [worker, connectedAt]. The connections' events after.
   */
  async function twoConnections(first: [number, number], second: [number, number], apart: boolean) {
    const { board } = board3();
    const u = ownedBy(2);
    const a = fakeClient(u, first[1], []);
    const b = fakeClient(u, second[1], []);
    board.links.get(first[0])!.clients.add(a.client);
    if (apart) await board.settled();
    board.links.get(second[0])!.clients.add(b.client);
    await board.settled();
    return { a: a.events, b: b.events, taken: board.sent.filter((s) => s.f.t === 'taken').map((s) => `${s.from}>${s.to}`) };
  }

  it('the older connection of a uaid held by two non-owners is closed, whichever attach the owner sees first', async () => {
    // The newer attaches first: the older one's attach then loses at the owner, which tells it.
    expect(await twoConnections([3, 200], [1, 100], true)).toEqual({ a: [], b: ['close 1000'], taken: ['2>1'] });
    // The other order: the older one's entry is replaced and it is told.
    expect(await twoConnections([1, 300], [3, 400], true)).toEqual({ a: ['close 1000'], b: [], taken: ['2>1'] });
    // The same instant on two workers: the higher worker index wins, as in the replicated directory.
    expect(await twoConnections([1, 500], [3, 500], false)).toEqual({ a: ['close 1000'], b: [], taken: ['2>1'] });
  });

  it("an owner's own connection and a sibling's: the older one closes, whichever came first", async () => {
    // The owner's newer connection after the sibling's attach: the sibling is told.
    expect(await twoConnections([1, 100], [2, 200], true)).toEqual({ a: ['close 1000'], b: [], taken: ['2>1'] });
    // The sibling's newer attach reaches the owner, which closes its own.
    expect(await twoConnections([2, 300], [1, 400], false)).toEqual({ a: ['close 1000'], b: [], taken: [] });
    // The owner's newer connection, the sibling's older attach arriving after it: the sibling is told.
    expect(await twoConnections([2, 600], [1, 500], false)).toEqual({ a: [], b: ['close 1000'], taken: ['2>1'] });
  });

  it('a drop from another machine reaches the holder through the owner', async () => {
    const { board, one, three } = board3();
    const u = ownedBy(2);
    const c = fakeClient(u, 100, []);
    three.clients.add(c.client);
    await board.settled();
    one.dropOlder(u, 50);
    await board.settled();
    expect(c.events).toEqual([]);
    one.dropOlder(u, 200);
    await board.settled();
    expect(c.events).toEqual(['close 1000']);
    expect(trace(board).filter((t) => t.endsWith('drop'))).toEqual(['1>2 drop', '2>3 drop', '1>2 drop', '2>3 drop']);
  });

  it('an owner that is down: a push is absent, a notify asks every sibling; its successor learns its entries when the links come back', async () => {
    const { board, one, three } = board3();
    const u = ownedBy(2);
    const held = fakeClient(u, 1, ['ch']);
    three.clients.add(held.client);
    await board.settled();
    // Worker 2 dies: its siblings' links to it go down, and it forgets what it knew (a successor starts empty).
    board.cutLink(1, 2);
    board.cutLink(3, 2);
    board.links.delete(2);
    expect(await one.push(note(u))).toBe('absent');
    // The endpoint then stores the message and notifies: every sibling is asked, and the holder reads storage.
    expect(await one.notify(u)).toBe(true);
    expect(held.events).toEqual(['storageChanged']);
    const successor = board.add(2, { ownerOf, workers: WORKERS });
    expect(successor.siblingClients).toBe(0);
    board.restore(1, 2);
    board.restore(3, 2);
    await board.settled();
    expect(successor.siblingClients).toBe(1);
    expect(await one.push(note(u))).toBe('delivered');
  });
});
