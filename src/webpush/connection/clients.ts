/**
 * The clients connected to this process (ClientRegistry), and the one durable delivery to such a client
 * (deliverDurably) that the endpoint's local path, the fleet's peer link and the workers' mesh all use.
 */
import type { Notification, Store } from '../../store/index.js';
import { storageCall } from '../protocol/errors.js';

/**
 * Where a push offered to the process holding its client ended: one table for the local path, the workers' mesh
 * (src/cluster/ipc.ts re-exports it) and the fleet's peer link (../protocol/peer-link.ts), each carrying the value as it is.
 * - `delivered`: written to the client's connection and, with TTL > 0, either acked by the client or saved by the
 *   holder (committed; or, during a store outage, kept by the session, which stores it when the connection ends;
 *   deleted when the client acks);
 * - `stored`: the client could not take it now (it reads from storage, or too much is in flight): the holder saved
 *   it and told the client's session to read storage;
 * - `busy`: the client is there but could not take it, and the holder did not save it (TTL 0, or, over a hop, its
 *   save failed): the caller stores it (TTL > 0) or drops it (TTL 0);
 * - `absent`: the client is not held here (the caller takes the full path: router record, store, notify);
 * - `no-channel`: the client here has no such channel (its channel list is authoritative: 404/410).
 */
export const OFFER_OUTCOMES = ['delivered', 'stored', 'busy', 'absent', 'no-channel'] as const;
export type OfferOutcome = (typeof OFFER_OUTCOMES)[number];

export interface DirectOptions {
  /** The message's save (TTL > 0): the session begins it at once or after its ack wait (Session.deliverDirect). */
  save?: DirectSave;
  onWritten?: (err?: Error) => void;
}

/**
 * The save of one directly sent TTL > 0 message, and the wait until the message is safe: acked by its client, or
 * committed to storage (README "Durability"). The session holding the client chooses when the save begins
 * (Session.deliverDirect): at once, or, for a client whose acks have been coming back within the ack wait (or that
 * has not had anything to ack yet), only when no ack has come by then. A message acked in time is never written:
 * autopush never writes a message it delivers directly, and Pushgate's answer still waits until the message is
 * acked or committed, so a SIGKILL after the answer loses nothing.
 */
export class DirectSave {
  private saving: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private settle!: () => void;
  /** Why the save failed, once it has. */
  failure: unknown = null;
  /**
   * Settles once the message is safe: acked, or its save settled. A failed save (a store outage) settles it too: the
   * session keeps the message and stores it when the connection ends (README "Durability").
   */
  readonly safe = new Promise<void>((resolve) => (this.settle = resolve));

  constructor(
    private readonly write: (n: Notification) => Promise<void>,
    private readonly notification: Notification,
  ) {}

  /** The save begun so far (true once committed); null while it waits for the client's ack. */
  get begun(): Promise<boolean> | null {
    return this.saving;
  }

  /** Begins the save now; only the first call saves (`n`: the message re-stamped, as the session stores it at close). */
  begin(n: Notification = this.notification): Promise<boolean> {
    clearTimeout(this.timer);
    if (!this.saving) {
      this.saving = this.write(n).then(
        () => true,
        (err: unknown) => {
          this.failure = err;
          return false;
        },
      );
      void this.saving.then(this.settle);
    }
    return this.saving;
  }

  /** Begins the save after `ms` unless the client acks first (release); `onLapse` is told when the wait ran out. */
  beginAfter(ms: number, onLapse?: () => void): void {
    this.timer = setTimeout(() => {
      onLapse?.();
      void this.begin();
    }, ms);
  }

  /**
   * Nothing needs saving any more (the client acked, or the message expired): a save not begun never will. Returns
   * the save begun before, if any: the caller deletes the message once it has committed.
   */
  release(): Promise<boolean> | null {
    if (!this.saving) {
      clearTimeout(this.timer);
      this.settle();
    }
    return this.saving;
  }
}

/** What the router needs of a client connected to this process. */
export interface ConnectedClient {
  readonly uaid: string;
  /** When this connection said hello (ms since the epoch): newer connections win. */
  readonly connectedAt: number;
  /** channelID → key hash (null when unrestricted) of every channel of this uaid. */
  readonly channels: ReadonlyMap<string, Buffer | null>;
  /**
   * Sends the message now when the client is ready for direct delivery; false when it must be stored
   * (draining storage, too many unacked messages, or the socket's send buffer is over its high-water mark).
   * `save` (TTL > 0) is begun by the session at once or after its ack wait, and released when the client acks
   * first; without one, or when it fails, the session stores the message itself at disconnect.
   * `onWritten` is called once the frame has been handed to the socket (or failed to be).
   */
  deliverDirect(notification: Notification, options?: DirectOptions): boolean;
  /** Storage holds a new message for this client: read it when the current batch is acked. */
  storageChanged(): void;
  /** Ends the connection (a newer connection took over, or the server shuts down). */
  close(code: number, reason: string): void;
}

/** The clients connected to this process, by uaid: the in-process route that avoids a storage round trip. */
export class ClientRegistry {
  private readonly clients = new Map<string, ConnectedClient>();
  /**
   * Where a message offered to one of these clients by another process is saved (offerToClient); the gateway sets
   * it once its store is open (a worker's registry exists before: src/cluster/worker.ts).
   */
  store: Store | null = null;

  get(uaid: string): ConnectedClient | undefined {
    return this.clients.get(uaid);
  }

  /** Registers the client; returns the older connection of the same uaid, which the caller closes. */
  add(client: ConnectedClient): ConnectedClient | undefined {
    const previous = this.clients.get(client.uaid);
    this.clients.set(client.uaid, client);
    return previous === client ? undefined : previous;
  }

  /** Removes the client only if it is still the registered one (a takeover may have replaced it). */
  remove(client: ConnectedClient): void {
    if (this.clients.get(client.uaid) === client) this.clients.delete(client.uaid);
  }

  /** Storage holds new messages for this uaid: the client connected here (if any) reads them. */
  storageChanged(uaid: string): void {
    this.clients.get(uaid)?.storageChanged();
  }

  get size(): number {
    return this.clients.size;
  }

  all(): IterableIterator<ConnectedClient> {
    return this.clients.values();
  }
}

/**
 * Delivers a notification to a client of this process durably (README "Durability"): a TTL > 0 message sent
 * directly answers once it is safe (DirectSave: acked by the client, or committed with the store's group commit),
 * so a SIGKILL of this process after the answer loses nothing. A client that cannot take it now gets it from
 * storage: saved, then its session is told. TTL 0 is never stored (RFC 8030 §5.2). Answers `delivered`, `stored`
 * or `busy` (TTL 0 and a client that cannot take it: nothing stored); a failed save of a message the client could
 * not take throws (storageCall: 503 for an outage). A frame written whose save failed still answers `delivered` once
 * the save has failed: a connected client keeps getting its pushes during a store outage, and its session stores the
 * message when the connection ends (README "Durability": only a crash in that window loses it).
 */
export async function deliverDurably(
  store: Store,
  clients: ClientRegistry,
  client: ConnectedClient,
  n: Notification,
): Promise<'delivered' | 'stored' | 'busy'> {
  if (n.ttl === 0) return client.deliverDirect(n) ? 'delivered' : 'busy';
  const save = new DirectSave((m) => store.saveMessage(m), n);
  if (client.deliverDirect(n, { save })) {
    await save.safe;
    return 'delivered';
  }
  await storageCall(() => store.saveMessage(n));
  // The client may have gone while the save was in its group commit (a newer connection took over, here or on a
  // sibling worker, and read storage before the message was there): then the registry tells whoever holds the uaid.
  if (clients.get(n.uaid) === client) client.storageChanged();
  else clients.storageChanged(n.uaid);
  return 'stored';
}

/**
 * Offers a notification to the client held in this process, as the peer link and the workers' mesh both do (the
 * holder saves, deliverDurably): `absent` when the client is not here, `no-channel` when the client here has no
 * such channel. A message its client cannot take that this process cannot save answers `busy` (never a throw):
 * the endpoint then stores it itself.
 */
export async function offerToClient(clients: ClientRegistry, n: Notification): Promise<OfferOutcome> {
  const client = clients.get(n.uaid);
  if (!client) return 'absent';
  if (!client.channels.has(n.channelID)) return 'no-channel';
  // Without a store (not yet open) nothing can be saved here: the endpoint saves it.
  if (!clients.store) return 'busy';
  return deliverDurably(clients.store, clients, client, n).catch(() => 'busy' as const);
}
