import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import type { Notification } from '../store/index.js';
import { BoundedMap } from '../util/bounded-map.js';
import { PendingRequests } from '../util/pending.js';
import { ClientRegistry, type ConnectedClient, offerToClient } from '../webpush/connection/clients.js';
import { CloseCode } from '../webpush/protocol/websocket.js';
import { ClientDirectory, type Holder, type OwnerOf, supersedes } from './directory.js';
import type { PeerFrame } from './frames.js';
import { type OfferOutcome, type PrimaryToWorker, type WorkerToPrimary, isPushgateMessage } from './ipc.js';
import { Mesh } from './mesh.js';

/**
 * A worker's side of the cluster: pushes, notifies and takeovers go to the sibling worker holding the client (over
 * the mesh of unix sockets, mesh.ts), found in the directory (directory.ts), which the holders keep current with an
 * attach/detach frame per connect and disconnect to every worker that keeps the uaid's entry. Replicated, that is
 * every sibling and this worker's own copy names the holder; partitioned, it is the uaid's owner, which a push or
 * notify landing elsewhere asks and which passes it on to the holder (never further: only the owner forwards). The
 * primary is off the message path; it only aggregates metrics (a request over node:cluster IPC). The logic here is
 * socket-free: it talks to a MeshPort, so tests wire several links together in one process.
 */

/** How long a sibling request may take before it counts as unanswered (the caller then uses the store). */
const REQUEST_TIMEOUT_MS = 3000;
/**
 * A notify that found no holder is remembered this long (and at most MISSES_KEPT of them): a client whose attach
 * arrives after such a notify may have read storage before that message was saved, so it is told to look again.
 * Remembering only misses, and rechecking only connections whose hello began before the miss, spares every other
 * connection a second storage read.
 */
const MISS_WINDOW_MS = 60_000;
const MISSES_KEPT = 100_000;

/** What the router and the peer link need of the other workers on this machine. */
export interface Siblings {
  /** Offers a notification to the worker holding the client, if any (never this one). */
  push(n: Notification): Promise<OfferOutcome>;
  /** Tells the worker holding the client that storage has new messages for it; true when one holds it. */
  notify(uaid: string): Promise<boolean>;
  /** Has the worker holding the uaid close its connection if older than connectedAt. */
  dropOlder(uaid: string, connectedAt: number): void;
}

/** How a link reaches its siblings: `send` is false when the link to that worker is not up (nothing was sent). */
export interface MeshPort {
  send(to: number, f: PeerFrame): boolean;
  /** Every sibling the link to which is up. */
  siblings(): Iterable<number>;
}

interface Pending {
  /** The worker asked (0: the primary), and what the request resolves to should that worker go away or time out. */
  to: number;
  ifLost: unknown;
}

export class WorkerLink implements Siblings {
  private readonly pending = new PendingRequests<Pending>(REQUEST_TIMEOUT_MS);
  private readonly directory = new ClientDirectory();
  private readonly recentMisses = new BoundedMap<string, number>(MISSES_KEPT);
  private readonly ownerOf: OwnerOf;
  private readonly workers: number;
  private readonly now: () => number;
  /** The registry of this worker's clients; every add and remove reaches the siblings' directories. */
  readonly clients: ClientRegistry;

  constructor(
    /** This worker's index (1..N). */
    readonly self: number,
    private readonly mesh: MeshPort,
    private readonly toPrimary: (m: WorkerToPrimary) => void,
    layout: {
      /** The directory's layout (directory.ts directoryLayout): null replicated, else each uaid's owner. */
      ownerOf?: OwnerOf;
      /** The workers on this machine (1..workers), for pushgate_cluster_directory_announced. */
      workers?: number;
      /** The clock the sessions stamp connectedAt with (Date.now; tests give their own). */
      now?: () => number;
    } = {},
  ) {
    this.ownerOf = layout.ownerOf ?? null;
    this.workers = layout.workers ?? 0;
    this.now = layout.now ?? Date.now;
    this.clients = new LinkedRegistry(this);
  }

  /** Keeps `worker` the directory entry of `uaid`? */
  private keeps(uaid: string, worker: number): boolean {
    return this.ownerOf === null || this.ownerOf(uaid) === worker;
  }

  /** The owner of a partitioned entry kept by another worker, which this one asks; null when it keeps the entry itself. */
  private ownerElsewhere(uaid: string): number | null {
    if (this.ownerOf === null) return null;
    const owner = this.ownerOf(uaid);
    return owner === this.self ? null : owner;
  }

  /**
   * Does this worker pass a sibling's push, notify or drop for `uaid` on to the holder? Only a partitioned entry's
   * owner does (a replica answers for its own clients: the asker's own copy named it), so nothing is passed twice.
   */
  private passesOn(uaid: string): boolean {
    return this.ownerOf !== null && this.ownerOf(uaid) === this.self;
  }

  /** Joins the cluster: the primary's IPC channel and the mesh of sibling sockets in `socketDir`, opened with `secret`. */
  static start(self: number, count: number, socketDir: string, secret: Buffer, ownerOf: OwnerOf = null): WorkerLink {
    // The mesh calls the link only once started, below: by then `link` is assigned.
    const mesh = new Mesh(
      socketDir,
      self,
      count,
      {
        frame: (from, f) => link.receive(from, f),
        up: (to) => link.linkUp(to),
        down: (to) => link.linkDown(to),
        silent: (from) => link.siblingSilent(from),
      },
      secret,
    );
    const link = new WorkerLink(self, mesh, (m) => process.send?.(m), { ownerOf, workers: count });
    process.on('message', (m: unknown) => {
      if (isPushgateMessage<PrimaryToWorker>(m)) link.fromPrimary(m);
    });
    // The primary is gone (killed without a chance to stop us): drain and exit rather than serve unsupervised.
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    mesh.start();
    return link;
  }

  /** prom-client answers the primary's AggregatorRegistry from this registry, which gains the directory's figures. */
  shareMetrics(registry: Registry): void {
    const entries: Gauge = new Gauge({
      name: 'pushgate_cluster_directory_entries',
      help: "Clients of sibling workers in this worker's part of the directory (summed over workers: the directory's entries)",
      registers: [registry],
      collect: () => entries.set(this.siblingClients),
    });
    const announced: Gauge = new Gauge({
      name: 'pushgate_cluster_directory_announced',
      help: "Directory entries this worker's clients should have on its siblings (equal to the entries once every attach arrived)",
      registers: [registry],
      collect: () => announced.set(this.announced()),
    });
    const linksDown: Gauge = new Gauge({
      name: 'pushgate_cluster_links_down',
      help: "This worker's links to siblings that are not up (summed over workers: 0 once the mesh is whole); a push for a sibling's client over a link that is down is stored, not sent",
      registers: [registry],
      collect: () => linksDown.set(this.linksDown()),
    });
    // Constructing one is what installs prom-client's worker-side answer to the primary's requests.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }

  push(n: Notification): Promise<OfferOutcome> {
    // Partitioned and not the owner: the owner offers it to its own client or passes it to the holder.
    const owner = this.ownerElsewhere(n.uaid);
    if (owner !== null) return this.request<OfferOutcome>(owner, (id) => ({ t: 'push', id, n }), 'absent');
    const holder = this.directory.get(n.uaid);
    if (!holder) return Promise.resolve('absent');
    return this.request<OfferOutcome>(holder.worker, (id) => ({ t: 'push', id, n }), 'absent');
  }

  notify(uaid: string): Promise<boolean> {
    const owner = this.ownerElsewhere(uaid);
    if (owner !== null) {
      // An owner that does not answer (it died, or is restarting with an empty part of the directory) cannot name the
      // holder: every sibling is asked, each about its own clients, so a message stored meanwhile is not left unread.
      return this.request<boolean | null>(owner, (id) => ({ t: 'notify', id, uaid }), null).then((found) => found ?? this.notifyEverySibling(uaid));
    }
    return this.notifyHolder(uaid);
  }

  /** Asks every sibling whether it holds the uaid (each looks at its own clients; an owner also passes it on). */
  private async notifyEverySibling(uaid: string): Promise<boolean> {
    const answers = await Promise.all([...this.mesh.siblings()].map((to) => this.request<boolean>(to, (id) => ({ t: 'notify', id, uaid }), false)));
    return answers.includes(true);
  }

  /**
   * The notify of a worker that keeps the uaid's entry: to the holder it names, a miss remembered. Never back to the
   * sibling that asked (`asker`): it told its own client already, or its entry here is stale, a miss too.
   */
  private notifyHolder(uaid: string, asker = 0): Promise<boolean> {
    const at = this.now();
    const holder = this.directory.get(uaid);
    if (!holder || holder.worker === asker) {
      this.missed(uaid, at);
      return Promise.resolve(false);
    }
    // A stale entry (that client left; a newer one may be attaching on a third worker) is a miss too. The newer
    // connection's attach may have arrived while the notify was out, before the miss was known: it is rechecked now.
    return this.request<boolean>(holder.worker, (id) => ({ t: 'notify', id, uaid }), false).then((found) => {
      if (!found) {
        this.missed(uaid, at);
        const now = this.directory.get(uaid);
        if (now && (now.worker !== holder.worker || now.connectedAt !== holder.connectedAt) && now.worker !== asker)
          this.recheckIfMissed(uaid, now.worker, now.connectedAt);
      }
      return found;
    });
  }

  dropOlder(uaid: string, connectedAt: number): void {
    // Partitioned and not the owner: the owner passes it to the holder (receive, `drop`).
    const owner = this.ownerElsewhere(uaid);
    if (owner !== null) return void this.mesh.send(owner, { t: 'drop', uaid, connectedAt });
    const holder = this.directory.get(uaid);
    if (holder) this.mesh.send(holder.worker, { t: 'drop', uaid, connectedAt });
  }

  /** The Prometheus text of every worker, aggregated by the primary. */
  metrics(): Promise<string> {
    return this.pending.start({ to: 0, ifLost: '' }, lost, (id) => this.toPrimary({ pg: 1, t: 'metrics', id })) as Promise<string>;
  }

  /** The uaids this worker believes its siblings hold (for tests and the directory's size). */
  get siblingClients(): number {
    return this.directory.size;
  }

  /** The entries this worker's clients should have in its siblings' parts of the directory, every link up. */
  announced(): number {
    if (this.ownerOf === null) return this.clients.size * (this.workers - 1);
    let n = 0;
    for (const c of this.clients.all()) if (this.ownerOf(c.uaid) !== this.self) n++;
    return n;
  }

  /** This worker's links to siblings that are not up (a sibling starting, restarting, or gone). */
  linksDown(): number {
    let up = 0;
    for (const _ of this.mesh.siblings()) up++;
    return Math.max(0, this.workers - 1 - up);
  }

  fromPrimary(m: PrimaryToWorker): void {
    // A handed-over link (t: 'link') is handoff.ts's.
    if (m.t === 'reply') this.pending.settle(m.id, m.v);
  }

  /** Handles a frame from sibling `from`. */
  receive(from: number, f: PeerFrame): void {
    switch (f.t) {
      case 'hello':
        return;
      case 'attach': {
        const incoming = { worker: from, connectedAt: f.connectedAt };
        const before = this.directory.get(f.uaid);
        this.directory.attach(f.uaid, from, f.connectedAt);
        const local = this.clients.get(f.uaid);
        if (local) {
          const mine = { worker: this.self, connectedAt: local.connectedAt };
          if (supersedes(incoming, mine)) local.close(CloseCode.normal, 'a newer connection of this uaid took over');
          else this.tellIfKeepsNone(f.uaid, from, mine);
        }
        // Two siblings' connections: one that keeps no entry (partitioned) learns only from here that it lost.
        if (before && before.worker !== from) {
          if (supersedes(incoming, before)) this.tellIfKeepsNone(f.uaid, before.worker, incoming);
          else this.tellIfKeepsNone(f.uaid, from, before);
        }
        this.recheckIfMissed(f.uaid, from, f.connectedAt);
        return;
      }
      case 'taken': {
        const local = this.clients.get(f.uaid);
        if (local && supersedes({ worker: f.worker, connectedAt: f.connectedAt }, { worker: this.self, connectedAt: local.connectedAt })) {
          local.close(CloseCode.normal, 'a newer connection of this uaid took over');
        }
        return;
      }
      case 'detach':
        this.directory.detach(f.uaid, from, f.connectedAt);
        return;
      case 'drop': {
        const client = this.clients.get(f.uaid);
        if (client) {
          if (client.connectedAt < f.connectedAt) client.close(CloseCode.normal, 'a newer connection of this uaid took over');
        } else if (this.passesOn(f.uaid)) {
          const holder = this.directory.get(f.uaid);
          if (holder && holder.worker !== from) this.mesh.send(holder.worker, f);
        }
        return;
      }
      case 'recheck': {
        // A push stored by a sibling just before it knew of this client is read now.
        const client = this.clients.get(f.uaid);
        if (client?.connectedAt === f.connectedAt) client.storageChanged();
        return;
      }
      case 'push':
        void this.offer(from, f.n).then((v) => this.mesh.send(from, { t: 'answer', id: f.id, v }));
        return;
      case 'notify': {
        const client = this.clients.get(f.uaid);
        if (client || !this.passesOn(f.uaid)) {
          client?.storageChanged();
          this.mesh.send(from, { t: 'answer', id: f.id, v: client !== undefined });
        } else {
          void this.notifyHolder(f.uaid, from).then((v) => this.mesh.send(from, { t: 'answer', id: f.id, v }));
        }
        return;
      }
      case 'answer':
        this.pending.settle(f.id, f.v);
        return;
    }
  }

  /**
   * A push from sibling `from`: to this worker's own client, else (the owner of a partitioned entry) to the holder the
   * directory names, never back to the asker; a replica or a non-owner answers for its own clients only.
   */
  private offer(from: number, n: Notification): Promise<OfferOutcome> {
    if (this.clients.get(n.uaid) || !this.passesOn(n.uaid)) return offerToClient(this.clients, n);
    const holder = this.directory.get(n.uaid);
    if (!holder || holder.worker === from) return Promise.resolve('absent');
    return this.request<OfferOutcome>(holder.worker, (id) => ({ t: 'push', id, n }), 'absent');
  }

  /**
   * `worker`'s connection of `uaid` lost to `winner`: it is told when it keeps no entry of the uaid (a partitioned
   * directory's non-owner). One that keeps an entry heard of the winner's attach and decides alike by itself.
   */
  private tellIfKeepsNone(uaid: string, worker: number, winner: Holder): void {
    if (!this.keeps(uaid, worker)) this.mesh.send(worker, { t: 'taken', uaid, worker: winner.worker, connectedAt: winner.connectedAt });
  }

  /**
   * The link to sibling `to` is up: it learns every client held here whose entry it keeps (its directory may be empty
   * or stale), and its clients whose attach arrived while this link was down hear of the notifies that missed them.
   */
  linkUp(to: number): void {
    for (const c of this.clients.all()) if (this.keeps(c.uaid, to)) this.mesh.send(to, { t: 'attach', uaid: c.uaid, connectedAt: c.connectedAt });
    for (const uaid of [...this.recentMisses.keys()]) {
      const holder = this.directory.get(uaid);
      if (holder?.worker === to) this.recheckIfMissed(uaid, to, holder.connectedAt);
    }
  }

  /**
   * Remembers a notify for `uaid` that found no holder at `at`. The latest miss is kept: a stale holder's answer to
   * an earlier notify can come back after a later miss, and a connection whose hello began between the two must
   * still be rechecked.
   */
  private missed(uaid: string, at: number): void {
    const before = this.recentMisses.get(uaid);
    if (before === undefined || before < at) this.recentMisses.set(uaid, at);
  }

  /**
   * A notify for this uaid found no holder shortly before its connection on `worker` attached: if that connection's
   * hello began before the miss (connectedAt is stamped before its storage read, the miss after the message was
   * saved), it may have read storage before the message was there, so it looks again. A hello that began after the
   * miss read it already. The miss is kept for its whole window, not spent on the first attach: that attach may be
   * of a connection already gone (its detach still behind it on the link), and the uaid's newer connection, whose
   * attach comes later, may have read storage before the message was saved as well. A recheck that cannot be sent
   * (the link is down) is sent by linkUp.
   */
  private recheckIfMissed(uaid: string, worker: number, connectedAt: number): void {
    const missedAt = this.recentMisses.get(uaid);
    if (missedAt === undefined) return;
    if (this.now() - missedAt >= MISS_WINDOW_MS) this.recentMisses.delete(uaid);
    else if (connectedAt <= missedAt) this.mesh.send(worker, { t: 'recheck', uaid, connectedAt });
  }

  /** The link to sibling `to` went down: its unanswered requests get their safe default now. */
  linkDown(to: number): void {
    this.pending.settleWhere((p) => p.to === to, lost);
  }

  /** Sibling `from` no longer talks to us (it died, or restarted): none of its clients are known connected. */
  siblingSilent(from: number): void {
    this.directory.forgetWorker(from);
  }

  /** Called by the registry: a client connected here. */
  attached(client: ConnectedClient): void {
    for (const to of this.mesh.siblings())
      if (this.keeps(client.uaid, to)) this.mesh.send(to, { t: 'attach', uaid: client.uaid, connectedAt: client.connectedAt });
    const held = this.directory.get(client.uaid);
    if (!held) return;
    const mine = { worker: this.self, connectedAt: client.connectedAt };
    if (supersedes(held, mine)) {
      // A newer connection of this uaid is on a sibling already (its attach came first): this one goes.
      setImmediate(() => {
        if (this.clients.get(client.uaid) === client) client.close(CloseCode.normal, 'a newer connection of this uaid took over');
      });
    } else this.tellIfKeepsNone(client.uaid, held.worker, mine);
  }

  /** Called by the registry: a client connected here went away. */
  detached(client: ConnectedClient): void {
    for (const to of this.mesh.siblings())
      if (this.keeps(client.uaid, to)) this.mesh.send(to, { t: 'detach', uaid: client.uaid, connectedAt: client.connectedAt });
  }

  private request<T>(to: number, make: (id: number) => PeerFrame, ifLost: T): Promise<T> {
    return this.pending.start({ to, ifLost }, lost, (id) => {
      if (!this.mesh.send(to, make(id))) this.pending.settle(id, ifLost);
    }) as Promise<T>;
  }
}

/** What a request resolves to when its worker goes away or does not answer in time. */
const lost = (p: Pending) => p.ifLost;

/** A worker's client registry: every add and remove reaches the siblings, storage news the holder. */
class LinkedRegistry extends ClientRegistry {
  constructor(private readonly link: WorkerLink) {
    super();
  }

  override add(client: ConnectedClient): ConnectedClient | undefined {
    const previous = super.add(client);
    this.link.attached(client);
    return previous;
  }

  override remove(client: ConnectedClient): void {
    const was = this.get(client.uaid) === client;
    super.remove(client);
    if (was) this.link.detached(client);
  }

  override storageChanged(uaid: string): void {
    super.storageChanged(uaid);
    void this.link.notify(uaid);
  }
}
