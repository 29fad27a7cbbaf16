import type { Notification } from '../../store/index.js';

export interface DirectOptions {
  saved?: Promise<boolean>;
  onWritten?: (err?: Error) => void;
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
   * `saved` settles true once the message is durably stored (the router writes every TTL > 0 message in
   * parallel with the send); when it is absent or settles false the session stores it itself at disconnect.
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
 * Offers a notification to the client held in this process, as the peer API and the workers' IPC both do:
 * `delivered` once the frame is written, `busy` when the client reads from storage (the message must queue
 * there behind the rest), `absent` when the client is not here or the write failed, `no-channel` when the
 * client here has no such channel (its channel list is authoritative).
 */
export function offerToClient(clients: ClientRegistry, n: Notification): Promise<'delivered' | 'busy' | 'absent' | 'no-channel'> {
  const client = clients.get(n.uaid);
  if (!client) return Promise.resolve('absent');
  if (!client.channels.has(n.channelID)) return Promise.resolve('no-channel');
  return new Promise((resolve) => {
    // The router writes every TTL > 0 message to the shared store before it hands it to another process, so the
    // session need not store it again at disconnect; it deletes it on ack.
    const saved = Promise.resolve(n.ttl > 0);
    if (!client.deliverDirect(n, { saved, onWritten: (err) => resolve(err ? 'absent' : 'delivered') })) resolve('busy');
  });
}
