import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Notification } from '../store/index.js';
import { ClientRegistry, type ConnectedClient, offerToClient } from '../webpush/connection/clients.js';
import { CloseCode } from '../webpush/protocol/websocket.js';
import { type OfferOutcome, type PrimaryToWorker, type WorkerToPrimary, isPushgateMessage } from './ipc.js';

/**
 * A worker's side of the cluster: its link to the primary (requests with ids, bounded in time), the client
 * registry that keeps the primary's directory current, and the answers to requests forwarded from siblings.
 */

/** How long a sibling request may take before it counts as unanswered (the caller then uses the store). */
const REQUEST_TIMEOUT_MS = 3000;

/** What the router and the peer API need of the other workers on this machine. */
export interface Siblings {
  /** Offers a notification to the worker holding the client, if any (never this one). */
  push(n: Notification): Promise<OfferOutcome>;
  /** Tells the worker holding the client that storage has new messages for it; true when one holds it. */
  notify(uaid: string): Promise<boolean>;
  /** Has the worker holding the uaid close its connection if older than connectedAt. */
  dropOlder(uaid: string, connectedAt: number): void;
}

export class WorkerLink implements Siblings {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; timer: NodeJS.Timeout }>();
  /** The registry of this worker's clients; every add and remove reaches the primary's directory. */
  readonly clients: ClientRegistry;

  constructor(private readonly send: (m: WorkerToPrimary) => void) {
    this.clients = new LinkedRegistry(send, (uaid) => void this.notify(uaid));
  }

  /** Joins the process's IPC channel (node:cluster worker). */
  static attachToProcess(): WorkerLink {
    const link = new WorkerLink((m) => process.send?.(m));
    process.on('message', (m: unknown) => {
      if (isPushgateMessage<PrimaryToWorker>(m)) link.receive(m);
    });
    // The primary is gone (killed without a chance to stop us): drain and exit rather than serve unsupervised.
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    return link;
  }

  /** prom-client answers the primary's AggregatorRegistry from this registry. */
  shareMetrics(registry: Registry): void {
    // Constructing one is what installs prom-client's worker-side answer to the primary's requests.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }

  push(n: Notification): Promise<OfferOutcome> {
    return this.request<OfferOutcome>((id) => ({ pg: 1, t: 'push', id, n }), 'absent');
  }

  notify(uaid: string): Promise<boolean> {
    return this.request<boolean>((id) => ({ pg: 1, t: 'notify', id, uaid }), false);
  }

  dropOlder(uaid: string, connectedAt: number): void {
    this.send({ pg: 1, t: 'drop', uaid, connectedAt });
  }

  /** The Prometheus text of every worker, aggregated by the primary. */
  metrics(): Promise<string> {
    return this.request<string>((id) => ({ pg: 1, t: 'metrics', id }), '');
  }

  /** Handles a message from the primary. */
  receive(m: PrimaryToWorker): void {
    switch (m.t) {
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m.v);
        return;
      }
      case 'push':
        void offerToClient(this.clients, m.n).then((v) => this.send({ pg: 1, t: 'answer', id: m.id, v }));
        return;
      case 'notify': {
        const client = this.clients.get(m.uaid);
        client?.storageChanged();
        this.send({ pg: 1, t: 'answer', id: m.id, v: client !== undefined });
        return;
      }
      case 'drop': {
        const client = this.clients.get(m.uaid);
        if (client && client.connectedAt < m.connectedAt) client.close(CloseCode.normal, 'a newer connection of this uaid took over');
        return;
      }
      case 'attached':
        // A push stored by a sibling just before the directory knew this client is read now (see primary.ts).
        if (this.clients.get(m.uaid)?.connectedAt === m.connectedAt) this.clients.get(m.uaid)!.storageChanged();
        return;
    }
  }

  private request<T>(make: (id: number) => WorkerToPrimary, onTimeout: T): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(onTimeout);
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, timer });
      this.send(make(id));
    });
  }
}

/** A worker's client registry: every add and remove reaches the primary's directory, storage news the holder. */
class LinkedRegistry extends ClientRegistry {
  constructor(
    private readonly send: (m: WorkerToPrimary) => void,
    private readonly notifyHolder: (uaid: string) => void,
  ) {
    super();
  }

  override add(client: ConnectedClient): ConnectedClient | undefined {
    const previous = super.add(client);
    this.send({ pg: 1, t: 'attach', uaid: client.uaid, connectedAt: client.connectedAt });
    return previous;
  }

  override remove(client: ConnectedClient): void {
    super.remove(client);
    this.send({ pg: 1, t: 'detach', uaid: client.uaid, connectedAt: client.connectedAt });
  }

  override storageChanged(uaid: string): void {
    super.storageChanged(uaid);
    this.notifyHolder(uaid);
  }
}
