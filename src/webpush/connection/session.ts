import type { FastifyBaseLogger } from 'fastify';
import { WebSocket } from 'ws';
import type { Metrics } from '../../ops/metrics.js';
import type { Notification, Store } from '../../store/index.js';
import type { ClientRegistry, ConnectedClient } from './clients.js';
import { decodeVapidKey, makeEndpoint, vapidKeyHash } from '../protocol/endpoint-token.js';
import type { MultiFernet } from '../protocol/fernet.js';
import type { PeerClient } from '../endpoint/peer-client.js';
import { isChannelId, isUaid, newUaid } from '../protocol/ids.js';
import { CloseCode, NACK_CODES } from '../protocol/websocket.js';
import { type ClientMessage, parseClientMessage } from './messages.js';
import type { DashboardTracker } from '../../dashboard/tracker.js';

/** What every session of one gateway shares. */
export interface ConnectionContext {
  store: Store;
  clients: ClientRegistry;
  fernet: MultiFernet;
  metrics: Metrics;
  log: FastifyBaseLogger;
  publicUrl: string;
  /** This node's internal URL, recorded in its clients' router records (null on a single node). */
  peerId: string | null;
  peers: PeerClient | null;
  msgLimit: number;
  storageBatch: number;
  helloTimeoutMs: number;
  minPingIntervalMs: number;
  /** The developer dashboard's recorder (src/dashboard/tracker.ts); null when nothing records. */
  dashboard?: DashboardTracker | null;
}

/** A sent notification the client has not acked yet. */
interface Unacked {
  notification: Notification;
  stored: boolean;
}

/**
 * One websocket client, as a state machine (autopush-rs: unidentified → identified):
 * - `unidentified`: only `hello` is legal, within the hello timeout;
 * - `identified`: register, unregister, ack, nack, ping, broadcast_subscribe; notifications flow;
 * - `closed`: nothing more is sent; unacked direct messages have been stored.
 * Client messages are handled one at a time, in arrival order.
 */
export class Session implements ConnectedClient {
  private state: 'unidentified' | 'identified' | 'closed' = 'unidentified';
  uaid = '';
  connectedAt = 0;
  readonly channels = new Map<string, Buffer | null>();
  /** A new uaid is written to storage only at its first register, as autopush does. */
  private deferredUser = false;
  private readonly unacked = new Map<string, Unacked>();
  /** Storage may hold messages not yet read by this session (autopush's check_storage flag). */
  private checkStorage = false;
  /** Set when a message is stored for this client while a storage read is in flight. */
  private storageDirty = false;
  private reading = false;
  private storageCursor = 0;
  private lastPing = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly helloTimer: NodeJS.Timeout;
  private closing: Promise<void> | null = null;

  constructor(
    readonly socket: WebSocket,
    private readonly ctx: ConnectionContext,
  ) {
    ctx.metrics.connections.inc();
    this.helloTimer = setTimeout(() => this.close(CloseCode.policyViolation, 'no hello in time'), ctx.helloTimeoutMs);
    socket.on('message', (data, isBinary) => {
      if (isBinary) return this.close(CloseCode.unsupportedData, 'binary frames are not part of the protocol');
      const text = data.toString();
      this.queue = this.queue.then(() => this.onFrame(text)).catch((err: unknown) => this.fail(err));
    });
    socket.on('close', () => void this.onClosed());
    socket.on('error', () => void this.onClosed());
  }

  private async onFrame(text: string): Promise<void> {
    if (this.state === 'closed') return;
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      this.ctx.metrics.clientMessages.inc({ type: 'invalid' });
      return this.close(CloseCode.invalidPayload, parsed.reason);
    }
    const msg = parsed.message;
    this.ctx.metrics.clientMessages.inc({ type: msg.messageType });
    if (this.state === 'unidentified') {
      if (msg.messageType !== 'hello') return this.close(CloseCode.policyViolation, 'hello must come first');
      return this.hello(msg.uaid);
    }
    return this.onIdentifiedMessage(msg);
  }

  private async onIdentifiedMessage(msg: ClientMessage): Promise<void> {
    switch (msg.messageType) {
      case 'hello':
        return this.close(CloseCode.policyViolation, 'already said hello');
      case 'register':
        return this.register(msg.channelID, msg.key);
      case 'unregister':
        return this.unregister(msg.channelID);
      case 'ack':
        return this.ack(msg.updates);
      case 'nack':
        return this.nack(msg.version, msg.code);
      case 'ping':
        return this.ping();
      case 'broadcast_subscribe':
        // Megaphone broadcasts are not served; Firefox only needs the message tolerated.
        return;
    }
  }

  // --- unidentified -------------------------------------------------------------------------------

  private async hello(requested: unknown): Promise<void> {
    clearTimeout(this.helloTimer);
    const { store } = this.ctx;
    const now = Date.now();
    this.connectedAt = now;
    let previousPeer: string | null = null;
    let uaid = isUaid(requested) ? requested : null;
    try {
      const user = uaid ? await store.getUser(uaid) : null;
      if (user && user.routerType === 'webpush') {
        if ((await store.countMessages(user.uaid, this.ctx.msgLimit + 1)) > this.ctx.msgLimit) {
          // autopush's msg_limit reset: drop everything; the client re-subscribes under a new uaid.
          await store.removeUser(user.uaid);
          this.ctx.metrics.notifications.inc({ outcome: 'uaid_reset', path: 'stored' });
          uaid = null;
        } else {
          await store.updateUser({ ...user, connectedAt: now, peerId: this.ctx.peerId });
          if (user.peerId !== null && user.peerId !== this.ctx.peerId) previousPeer = user.peerId;
          for (const ch of await store.getChannels(user.uaid)) this.channels.set(ch.channelID, ch.keyHash);
          this.checkStorage = true;
        }
      } else {
        uaid = null;
      }
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'storage unavailable during hello');
      return this.close(CloseCode.tryAgainLater, 'storage unavailable');
    }
    if (this.isClosed()) return;
    if (!uaid) {
      uaid = newUaid();
      this.deferredUser = true;
    }
    this.uaid = uaid;
    this.state = 'identified';
    const previous = this.ctx.clients.add(this);
    previous?.close(CloseCode.normal, 'a newer connection of this uaid took over');
    // The client moved here from another node: that node drops its older connection.
    if (previousPeer !== null) void this.ctx.peers?.dropOlder(previousPeer, uaid, now);
    this.send({ messageType: 'hello', uaid, status: 200, use_webpush: true, broadcasts: {} });
    await this.readStorage();
  }

  // --- identified: client messages ----------------------------------------------------------------

  private async register(channelID: unknown, key: unknown): Promise<void> {
    if (!isChannelId(channelID)) {
      return this.send({ messageType: 'register', channelID: typeof channelID === 'string' ? channelID : '', status: 400 });
    }
    let keyHash: Buffer | null = null;
    if (key !== undefined && key !== null) {
      const raw = typeof key === 'string' ? decodeVapidKey(key) : null;
      if (!raw) return this.send({ messageType: 'register', channelID, status: 400 });
      keyHash = vapidKeyHash(raw);
    }
    const existing = this.channels.get(channelID);
    if (existing !== undefined && !sameKey(existing, keyHash)) {
      // The channel exists with another (or no) application server key: RFC 8292 §4.2.
      return this.send({ messageType: 'register', channelID, status: 409 });
    }
    try {
      if (this.deferredUser) {
        await this.ctx.store.addUser({ uaid: this.uaid, routerType: 'webpush', routerData: null, connectedAt: this.connectedAt, peerId: this.ctx.peerId });
        this.deferredUser = false;
      }
      if (existing === undefined) await this.ctx.store.addChannel(this.uaid, { channelID, keyHash });
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'register failed');
      return this.send({ messageType: 'register', channelID, status: 500 });
    }
    this.channels.set(channelID, keyHash);
    const pushEndpoint = makeEndpoint(this.ctx.publicUrl, this.ctx.fernet, this.uaid, channelID, keyHash);
    this.send({ messageType: 'register', channelID, status: 200, pushEndpoint });
  }

  private async unregister(channelID: unknown): Promise<void> {
    if (!isChannelId(channelID)) {
      return this.send({ messageType: 'unregister', channelID: typeof channelID === 'string' ? channelID : '', status: 400 });
    }
    try {
      if (!this.deferredUser) await this.ctx.store.removeChannel(this.uaid, channelID);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'unregister failed');
      return this.send({ messageType: 'unregister', channelID, status: 500 });
    }
    this.channels.delete(channelID);
    for (const [version, u] of this.unacked) if (u.notification.channelID === channelID) this.unacked.delete(version);
    this.send({ messageType: 'unregister', channelID, status: 200 });
    await this.afterAcks();
  }

  private async ack(updates: { channelID: string; version: string }[]): Promise<void> {
    const now = Date.now();
    for (const update of updates) {
      const entry = this.unacked.get(update.version);
      // Only an ack naming the right channel counts: an older or foreign ack must not delete anything.
      if (!entry || entry.notification.channelID !== update.channelID) continue;
      this.unacked.delete(update.version);
      this.ctx.dashboard?.acked(entry.notification, entry.stored, now);
      const path = entry.stored ? 'stored' : 'direct';
      this.ctx.metrics.notifications.inc({ outcome: 'acked', path });
      this.ctx.metrics.deliveryLatency.observe({ path }, (now - entry.notification.timestamp) / 1000);
      if (entry.stored) {
        try {
          await this.ctx.store.removeMessage(this.uaid, entry.notification.seq);
        } catch (err) {
          // Not lost: the message stays stored and is delivered again (Firefox de-duplicates on version).
          this.ctx.log.warn({ err: (err as Error).message }, 'could not delete an acked message');
        }
      }
    }
    await this.afterAcks();
  }

  private async nack(version: string | null, code: number | null): Promise<void> {
    const entry = version !== null ? this.unacked.get(version) : undefined;
    const known = code !== null && (NACK_CODES as readonly number[]).includes(code);
    this.ctx.metrics.notifications.inc({ outcome: known ? `nacked_${code}` : 'nacked', path: entry?.stored ? 'stored' : 'direct' });
    if (entry && version !== null) {
      // A nacked stored message stays in storage until its TTL ends; flow control moves past it.
      this.unacked.delete(version);
      await this.afterAcks();
    }
  }

  private ping(): void {
    const now = Date.now();
    if (now - this.lastPing < this.ctx.minPingIntervalMs) return this.close(CloseCode.policyViolation, 'pings too often');
    this.lastPing = now;
    this.send({});
  }

  // --- identified: notifications ------------------------------------------------------------------

  deliverDirect(n: Notification, onWritten?: (err?: Error) => void): boolean {
    if (this.state !== 'identified' || this.socket.readyState !== WebSocket.OPEN) return false;
    // While stored messages drain, new ones queue behind them in storage to keep their order.
    if (this.checkStorage && n.ttl > 0) return false;
    this.sendNotification(n, false, onWritten);
    return true;
  }

  storageChanged(): void {
    if (this.state !== 'identified') return;
    this.storageDirty = true;
    if (!this.checkStorage) {
      this.checkStorage = true;
      this.queue = this.queue.then(() => this.afterAcks()).catch((err: unknown) => this.fail(err));
    }
  }

  private sendNotification(n: Notification, stored: boolean, onWritten?: (err?: Error) => void): void {
    this.unacked.set(n.version, { notification: n, stored });
    const frame: Record<string, unknown> = { messageType: 'notification', channelID: n.channelID, version: n.version, ttl: n.ttl };
    if (n.data !== null) {
      frame['data'] = n.data;
      if (n.headers) frame['headers'] = n.headers;
    }
    this.send(frame, onWritten);
    this.ctx.metrics.notifications.inc({ outcome: 'delivered', path: stored ? 'stored' : 'direct' });
  }

  /** autopush's flow control: the next batch is read only once every sent stored message is acked. */
  private async afterAcks(): Promise<void> {
    if (this.state !== 'identified' || !this.checkStorage) return;
    for (const u of this.unacked.values()) if (u.stored) return;
    await this.readStorage();
  }

  private async readStorage(): Promise<void> {
    if (this.reading || !this.checkStorage || this.deferredUser) {
      if (this.deferredUser) this.checkStorage = false;
      return;
    }
    this.reading = true;
    try {
      for (;;) {
        this.storageDirty = false;
        const batch = await this.ctx.store.fetchMessages(this.uaid, this.storageCursor, this.ctx.storageBatch, Date.now());
        if (this.state !== 'identified') return;
        if (batch.length > 0) {
          // One write system call for the whole batch instead of one per frame: the underlying socket is
          // corked while the frames are queued (ws corks per frame too; corks nest).
          const raw = (this.socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
          raw?.cork();
          for (const n of batch) {
            this.storageCursor = n.seq;
            if (this.channels.has(n.channelID)) this.sendNotification(n, true);
          }
          raw?.uncork();
          if ([...this.unacked.values()].some((u) => u.stored)) return;
          continue;
        }
        if (!this.storageDirty) {
          this.checkStorage = false;
          return;
        }
      }
    } catch (err) {
      // The client stays connected; storage is read again at the next ack or new message.
      this.ctx.log.warn({ err: (err as Error).message }, 'reading stored messages failed');
    } finally {
      this.reading = false;
    }
  }

  // --- closing ------------------------------------------------------------------------------------

  private send(frame: object, onWritten?: (err?: Error) => void): void {
    if (this.state === 'closed' || this.socket.readyState !== WebSocket.OPEN) {
      onWritten?.(new Error('connection closed'));
      return;
    }
    this.socket.send(JSON.stringify(frame), onWritten);
  }

  close(code: number, reason: string): void {
    if (this.isClosed()) return;
    this.ctx.metrics.closes.inc({ code: String(code) });
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close(code, reason);
    void this.onClosed();
  }

  private fail(err: unknown): void {
    this.ctx.log.error({ err: (err as Error)?.message }, 'websocket session failed');
    this.close(CloseCode.internalError, 'internal error');
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private onClosed(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  /** Direct messages the client never acked are stored, so nothing accepted is lost by a disconnect. */
  private async finish(): Promise<void> {
    const wasIdentified = this.state === 'identified';
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.ctx.metrics.connections.dec();
    if (!wasIdentified) return;
    this.ctx.clients.remove(this);
    const peerId = this.ctx.peerId;
    if (peerId !== null && !this.deferredUser) {
      // Endpoint nodes stop routing here; a newer connection's route (another connectedAt) is left alone.
      this.ctx.store.clearNodeId(this.uaid, this.connectedAt, peerId).catch(() => {});
    }
    const now = Date.now();
    for (const { notification, stored } of this.unacked.values()) {
      if (stored || notification.ttl === 0 || notification.expiry <= now) continue;
      try {
        await this.ctx.store.saveMessage(notification);
        this.ctx.dashboard?.storedUnacked(notification);
      } catch (err) {
        this.ctx.log.error({ err: (err as Error).message }, 'could not store an unacked message');
      }
    }
    this.unacked.clear();
    // A newer connection of this uaid may have read storage before these were saved.
    this.ctx.clients.get(this.uaid)?.storageChanged();
  }

  /** Resolves once the session is closed and its unacked messages are stored. */
  async closed(): Promise<void> {
    await this.onClosed();
  }
}

function sameKey(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}
