import type { FastifyBaseLogger } from 'fastify';
import type { Metrics } from '../../ops/metrics.js';
import type { Notification, Store } from '../../store/index.js';
import type { BroadcastSource } from '../broadcast/source.js';
import type { ClientRegistry, ConnectedClient, DirectOptions, DirectSave } from './clients.js';
import { makeEndpoint, vapidKeyHashOf } from '../protocol/endpoint-token.js';
import type { MultiFernet } from '../protocol/fernet.js';
import type { PeerClient } from '../endpoint/peer-client.js';
import { isChannelId, newUaid } from '../protocol/ids.js';
import { onOtherNode } from '../protocol/peer-link.js';
import { CloseCode, NACK_CODES } from '../protocol/websocket.js';
import { type BroadcastVersions, type ClientMessage, NotificationFrame } from './messages.js';

import type { DashboardTracker } from '../../dashboard/tracker.js';

/**
 * The websocket session as a state machine (autopush-rs: autoconnect-ws-sm). It takes events (client messages
 * already parsed, server notifications, storage results, the hello timer, the socket closing) and emits effects
 * through a `SessionPort` (frames to send, a close decision); it never touches a socket, so it is tested with a
 * recording port and an in-memory store (test/webpush/connection/session.test.ts). The socket adapter
 * (socket.ts) is the only place that writes, corks, pings and watches backpressure.
 */

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
  /** Unacked messages in flight per connection before new ones are stored instead of sent. */
  maxUnacked: number;
  /** Socket send-buffer bytes above which new messages are stored instead of sent. */
  wsHighWater: number;
  /**
   * How long a direct TTL > 0 message waits for its ack before it is saved, for a client whose acks have been
   * coming back within half of it, or that has acked nothing yet (Session.deliverDirect); 0 saves every one at once.
   */
  ackWaitMs: number;
  maxChannels: number;
  /** A uaid not connected for this long is removed at its next hello (autopush's MAX_ROUTER_TIME). */
  userMaxIdleMs: number;
  broadcasts: BroadcastSource;
  /** A fresh per-uaid ordering key (the router's): re-stamps messages saved at disconnect. */
  nextSeq: () => number;
  /** The clock (ms since the epoch); tests control it. */
  now: () => number;
  /** The developer dashboard's recorder (src/dashboard/tracker.ts); null when nothing records. */
  dashboard?: DashboardTracker | null;
}

/** The effects a session emits; the socket adapter performs them, tests record them. */
export interface SessionPort {
  /** Sends the frames in order, as one write when there are several. */
  send(frames: object[], onWritten?: (err?: Error) => void): void;
  /** Closes the connection; the adapter then reports `onClosed`. */
  close(code: number, reason: string): void;
  /** Bytes queued on the socket and not yet written (ws's `bufferedAmount`). */
  bufferedAmount(): number;
}

/** A sent notification the client has not acked yet. */
interface Unacked {
  notification: Notification;
  /** Read from storage by this session (so stored). */
  fromStorage: boolean;
  /** A direct TTL > 0 message's save (begun, or waiting for the ack); null when read from storage or not durable. */
  save: DirectSave | null;
  /** When it was sent (ctx.now()): the ack's delay feeds the session's estimate. */
  sentAt: number;
}

const SAVED = Promise.resolve(true);

/**
 * The empty collection every session starts with, shared until its first entry: most connections sit idle, and four
 * empty Maps and Sets per connection cost 640 bytes of heap (100,000 connections: 64 MB). Adding to a shared one
 * throws, so a missed copy-on-first-write fails loudly instead of mixing two sessions' state.
 */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('the shared empty map is read-only');
  }
}
class SharedEmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error('the shared empty set is read-only');
  }
}
const NO_UNACKED: Map<string, Unacked> = new SharedEmptyMap();
const NO_STRINGS: Set<string> = new SharedEmptySet();
const NO_PROMISES: Set<Promise<void>> = new SharedEmptySet();
/** Channels read per storage call at hello. */
const CHANNEL_PAGE = 500;
/** Weight of the newest ack delay in the session's running estimate (an exponentially weighted mean). */
const ACK_DELAY_WEIGHT = 0.25;

/**
 * One websocket client (autopush-rs: unidentified → identified):
 * - `unidentified`: only `hello` is legal, within the hello timeout;
 * - `identified`: register, unregister, ack, nack, ping, broadcast_subscribe; notifications flow;
 * - `closed`: nothing more is sent; unacked direct messages that were not durable yet have been stored.
 * Client messages are handled one at a time, in arrival order.
 */
export class Session implements ConnectedClient {
  private state: 'unidentified' | 'identified' | 'closed' = 'unidentified';
  uaid = '';
  connectedAt = 0;
  readonly channels = new Map<string, Buffer | null>();
  /** A new uaid is written to storage only at its first register, as autopush does. */
  private deferredUser = false;
  private unacked = NO_UNACKED;
  /**
   * Versions this session sent that may still be in storage (direct messages are stored too): a later storage
   * read skips them, so no message is delivered twice in one session. An entry leaves once its delete commits.
   */
  private sent = NO_STRINGS;
  /** Storage may hold messages not yet read by this session (autopush's check_storage flag). */
  private checkStorage = false;
  /** Set when a message is stored for this client while a storage read is in flight. */
  private storageDirty = false;
  private reading = false;
  private storageCursor = 0;
  /**
   * Storage changed: the next pass of reads starts over from the first message (readStorage). A message's `seq`
   * is stamped when its push arrives, and it is saved later: after a hop to the worker or node holding the client,
   * after the router's reads, or in a later group commit than a message stamped after it. By then this session may
   * have read past its `seq` (a message re-stamped when an older connection closed, saved meanwhile), and reading
   * on from the cursor would leave it in storage until the next connection. What this session sent is skipped by
   * `sent` (acked ones until their delete commits, nacked ones for good), so starting over sends nothing twice.
   */
  private rewind = false;
  /** Messages sent from storage in this run of reads (autopush's sent_from_storage): past msg_limit, reset. */
  private sentFromStorage = 0;
  private lastPing = 0;
  /** Broadcast ids this connection subscribed to. */
  private broadcastSubs = NO_STRINGS;
  private queue: Promise<void> = Promise.resolve();
  /** Deletes of acked messages still in their group commit (acks do not wait for them; idle() and finish() do). */
  private deleting = NO_PROMISES;
  private closing: Promise<void> | null = null;
  /**
   * How long this client takes to ack a notification (ms, running estimate); null until its first ack, or until the
   * first ack wait that runs out (ackWaitLapsed).
   */
  private ackDelayMs: number | null = null;

  constructor(
    private readonly port: SessionPort,
    private readonly ctx: ConnectionContext,
  ) {
    ctx.metrics.connections.inc();
  }

  // --- events -------------------------------------------------------------------------------------

  /** A parsed client message; handled after every earlier one. Resolves once it is handled. */
  onMessage(msg: ClientMessage): Promise<void> {
    this.queue = this.queue.then(() => this.handle(msg)).catch((err: unknown) => this.fail(err));
    return this.queue;
  }

  /** A frame that is not a valid client message (the adapter's parser said why). */
  onInvalid(reason: string): void {
    this.ctx.metrics.clientMessages.inc({ type: 'invalid' });
    this.close(CloseCode.invalidPayload, reason);
  }

  /** A binary frame: the protocol is JSON text only. */
  onBinary(): void {
    this.close(CloseCode.unsupportedData, 'binary frames are not part of the protocol');
  }

  /** The hello timer fired (the adapter starts it when the upgrade begins). */
  onHelloTimeout(): void {
    if (this.state === 'unidentified') this.close(CloseCode.policyViolation, 'no hello in time');
  }

  /** The socket is gone (closed by either side or failed). */
  onClosed(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  /** Messages sent and not acked yet (bounded by maxUnacked for direct sends; operators and tests read it). */
  get inFlight(): number {
    return this.unacked.size;
  }

  /** Bytes queued on the socket, as the adapter reports them. */
  get bufferedBytes(): number {
    return this.port.bufferedAmount();
  }

  /** Resolves once every message received so far is handled and the deletes its acks started have settled. */
  async idle(): Promise<void> {
    await this.queue;
    await Promise.all(this.deleting);
  }

  private async handle(msg: ClientMessage): Promise<void> {
    if (this.state === 'closed') return;
    this.ctx.metrics.clientMessages.inc({ type: msg.messageType });
    if (this.state === 'unidentified') {
      if (msg.messageType !== 'hello') return this.close(CloseCode.policyViolation, 'hello must come first');
      return this.hello(msg.uaid, msg.broadcasts);
    }
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
        return this.broadcastSubscribe(msg.broadcasts);
    }
  }

  // --- unidentified -------------------------------------------------------------------------------

  private async hello(requested: string | null, broadcasts: BroadcastVersions): Promise<void> {
    const { store } = this.ctx;
    const now = this.ctx.now();
    this.connectedAt = now;
    let previousPeer: string | null = null;
    let uaid = requested;
    try {
      const user = uaid ? await store.getUser(uaid) : null;
      if (user && user.routerType === 'webpush' && user.connectedAt < now - this.ctx.userMaxIdleMs) {
        // autopush drops a user agent idle for longer than MAX_ROUTER_TIME: it re-subscribes under a new uaid.
        await store.removeUser(user.uaid);
        this.ctx.metrics.notifications.inc({ outcome: 'uaid_expired', path: 'stored' });
        uaid = null;
      } else if (user && user.routerType === 'webpush') {
        await store.updateUser({ ...user, connectedAt: now, peerId: this.ctx.peerId });
        if (onOtherNode(user.peerId, this.ctx.peerId)) previousPeer = user.peerId;
        await this.loadChannels(user.uaid);
        this.checkStorage = true;
      } else {
        uaid = null;
      }
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'storage unavailable during hello');
      return this.close(CloseCode.tryAgainLater, 'storage unavailable');
    }
    if (this.state === 'closed') return;
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
    this.port.send([{ messageType: 'hello', uaid, status: 200, use_webpush: true, broadcasts: this.subscribeBroadcasts(broadcasts, true) }]);
    // A new uaid has nothing stored (its user row is not even written yet): no storage read to start.
    if (!this.deferredUser) await this.readStorage();
  }

  /**
   * Channels are read a page at a time, yielding to the event loop between pages, so a uaid with very many
   * channels (stored before the cap existed) never blocks other connections for long.
   */
  private async loadChannels(uaid: string): Promise<void> {
    let after = '';
    for (;;) {
      const page = await this.ctx.store.getChannelsPage(uaid, after, CHANNEL_PAGE);
      for (const ch of page) this.channels.set(ch.channelID, ch.keyHash);
      if (page.length < CHANNEL_PAGE) return;
      after = page[page.length - 1]!.channelID;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * autopush-rs's broadcast_delta / subscribe_to_broadcasts: known ids are subscribed and answered with the
   * current version where the client's differs; unknown ids are answered under `errors` with "Broadcast not found".
   * In hello the answer is always present (possibly `{}`); in broadcast_subscribe only already-subscribed ids are skipped.
   */
  private subscribeBroadcasts(requested: BroadcastVersions, all: boolean): Record<string, unknown> {
    const current = this.ctx.broadcasts.versions();
    const answer: Record<string, unknown> = {};
    const errors: Record<string, string> = {};
    for (const [id, version] of requested) {
      const now = current.get(id);
      if (now === undefined) {
        errors[id] = 'Broadcast not found';
        continue;
      }
      if (!all && this.broadcastSubs.has(id)) continue;
      if (this.broadcastSubs === NO_STRINGS) this.broadcastSubs = new Set();
      this.broadcastSubs.add(id);
      if (now !== version) answer[id] = now;
    }
    if (Object.keys(errors).length > 0) answer['errors'] = errors;
    return answer;
  }

  // --- identified: client messages ----------------------------------------------------------------

  private async register(channelID: string, key: string | null): Promise<void> {
    if (!isChannelId(channelID)) return this.port.send([{ messageType: 'register', channelID, status: 400 }]);
    let keyHash: Buffer | null = null;
    if (key !== null) {
      keyHash = vapidKeyHashOf(key);
      if (!keyHash) return this.port.send([{ messageType: 'register', channelID, status: 400 }]);
    }
    const existing = this.channels.get(channelID);
    if (existing !== undefined && !sameKey(existing, keyHash)) {
      // The channel exists with another (or no) application server key: RFC 8292 §4.2.
      return this.port.send([{ messageType: 'register', channelID, status: 409 }]);
    }
    if (existing === undefined && this.channels.size >= this.ctx.maxChannels) {
      // autopush has no cap; a register it cannot complete answers 500, which Firefox reports as a failed subscribe.
      this.ctx.metrics.clientMessages.inc({ type: 'register_over_channel_limit' });
      return this.port.send([{ messageType: 'register', channelID, status: 500 }]);
    }
    try {
      // The deferred user row and the channel row are issued together, so a store with group commit (SQLite)
      // writes both in one transaction instead of two; the answer waits for both, so the durability is unchanged.
      const writes: Promise<unknown>[] = [];
      if (this.deferredUser) {
        writes.push(
          this.ctx.store.addUser({ uaid: this.uaid, routerType: 'webpush', routerData: null, connectedAt: this.connectedAt, peerId: this.ctx.peerId }),
        );
      }
      if (existing === undefined) writes.push(this.ctx.store.addChannel(this.uaid, { channelID, keyHash }));
      // Both settle before the answer, so a failure of one never answers while the other is still in flight.
      if (writes.length === 1) {
        await writes[0];
      } else {
        for (const o of await Promise.allSettled(writes)) if (o.status === 'rejected') throw o.reason instanceof Error ? o.reason : new Error(String(o.reason));
      }
      this.deferredUser = false;
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'register failed');
      return this.port.send([{ messageType: 'register', channelID, status: 500 }]);
    }
    this.channels.set(channelID, keyHash);
    const pushEndpoint = makeEndpoint(this.ctx.publicUrl, this.ctx.fernet, this.uaid, channelID, keyHash);
    this.port.send([{ messageType: 'register', channelID, status: 200, pushEndpoint }]);
  }

  private async unregister(channelID: string): Promise<void> {
    if (!isChannelId(channelID)) return this.port.send([{ messageType: 'unregister', channelID, status: 400 }]);
    try {
      if (!this.deferredUser) await this.ctx.store.removeChannel(this.uaid, channelID);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'unregister failed');
      return this.port.send([{ messageType: 'unregister', channelID, status: 500 }]);
    }
    this.channels.delete(channelID);
    // removeChannel deleted the channel's stored messages too.
    for (const [version, u] of this.unacked) {
      if (u.notification.channelID !== channelID) continue;
      void u.save?.release();
      this.unacked.delete(version);
    }
    this.port.send([{ messageType: 'unregister', channelID, status: 200 }]);
    await this.afterAcks();
  }

  private async ack(updates: { channelID: string; version: string }[]): Promise<void> {
    const now = this.ctx.now();
    for (const update of updates) {
      // autopush matches an ack by version alone (the version names the message; the channelID is informative).
      const entry = this.unacked.get(update.version);
      if (!entry) continue;
      this.unacked.delete(update.version);
      const delay = Math.max(0, now - entry.sentAt);
      this.ackDelayMs = this.ackDelayMs === null ? delay : this.ackDelayMs + ACK_DELAY_WEIGHT * (delay - this.ackDelayMs);
      this.ctx.dashboard?.acked(entry.notification, entry.fromStorage, now);
      const path = entry.fromStorage ? 'stored' : 'direct';
      this.ctx.metrics.notifications.inc({ outcome: 'acked', path });
      this.ctx.metrics.deliveryLatency.observe({ path }, (now - entry.notification.timestamp) / 1000);
      if (entry.notification.ttl === 0) continue;
      // A direct message whose save had not begun is never written: nothing to delete.
      const stored = entry.fromStorage ? SAVED : (entry.save?.release() ?? null);
      if (!stored) {
        this.sent.delete(update.version);
        if (entry.save) this.ctx.metrics.directWritesSkipped.inc();
        continue;
      }
      // Not awaited: the client's next frame need not wait for this delete's group commit. Until it commits the
      // version stays in `sent`, so a storage read in between never sends the message again; a failed delete is
      // logged and the message comes back next session (deleteAcked never rejects).
      const deleting = this.deleteAcked(entry.notification, stored).finally(() => this.deleting.delete(deleting));
      if (this.deleting === NO_PROMISES) this.deleting = new Set();
      this.deleting.add(deleting);
    }
    await this.afterAcks();
  }

  /** An acked message is deleted (autopush may redeliver acked non-topic messages; Pushgate never does). */
  private async deleteAcked(n: Notification, stored: Promise<boolean>): Promise<void> {
    // A direct message's write may still be in its group commit: delete after it, never before.
    if (!(await stored)) {
      this.sent.delete(n.version);
      return;
    }
    try {
      await this.ctx.store.forgetMessage(n);
      this.sent.delete(n.version);
    } catch (err) {
      // Not lost: the message stays stored and is delivered again next session (Firefox de-duplicates on version).
      this.ctx.log.warn({ err: (err as Error).message }, 'could not delete an acked message');
    }
  }

  private async nack(version: string | null, code: number | null): Promise<void> {
    const entry = version !== null ? this.unacked.get(version) : undefined;
    const known = code !== null && (NACK_CODES as readonly number[]).includes(code);
    this.ctx.metrics.notifications.inc({ outcome: known ? `nacked_${code}` : 'nacked', path: entry?.fromStorage ? 'stored' : 'direct' });
    if (entry && version !== null) {
      // A nacked message stays in storage until its TTL ends (for the next session); flow control moves past it.
      void entry.save?.begin();
      this.unacked.delete(version);
      await this.afterAcks();
    }
  }

  private ping(): void {
    const now = this.ctx.now();
    if (now - this.lastPing < this.ctx.minPingIntervalMs) return this.close(CloseCode.policyViolation, 'pings too often');
    this.lastPing = now;
    this.port.send([{}]);
  }

  private broadcastSubscribe(requested: BroadcastVersions): void {
    const answer = this.subscribeBroadcasts(requested, false);
    if (Object.keys(answer).length > 0) this.port.send([{ messageType: 'broadcast', broadcasts: answer }]);
  }

  // --- identified: server notifications -----------------------------------------------------------

  deliverDirect(n: Notification, options: DirectOptions = {}): boolean {
    if (this.state !== 'identified') return false;
    // While stored messages drain, new ones queue behind them in storage to keep their order.
    if (this.checkStorage && n.ttl > 0) return false;
    // A client that stops acking or reading costs bounded memory: beyond these, messages wait in storage.
    if (this.unacked.size >= this.ctx.maxUnacked || this.port.bufferedAmount() > this.ctx.wsHighWater) return false;
    const save = n.ttl > 0 ? (options.save ?? null) : null;
    if (save) {
      // A client that has been acking within half the wait will most likely ack this one in time, and then it is
      // never written. So is a client that has not acked anything yet: most clients ack within a round trip, and a
      // connection's first message is often its only one, so saving it at once wrote most of what the wait spares.
      // A first wait that runs out marks the client slow until its acks say otherwise (ackWaitLapsed). Any other
      // client's message is saved at once, in parallel with the send (README "Durability").
      const wait = this.ctx.ackWaitMs;
      const estimate = this.ackDelayMs;
      if (wait === 0 || (estimate !== null && estimate * 2 > wait)) void save.begin();
      else if (estimate === null) save.beginAfter(wait, () => this.ackWaitLapsed());
      else save.beginAfter(wait);
    }
    this.sendNotifications([n], false, save, options.onWritten);
    return true;
  }

  /**
   * A message sent before this client had acked anything was not acked within the whole wait: until its acks say
   * otherwise, the client counts as slow (an estimate of the full wait, over the half that the next message's
   * wait needs), so its later messages are saved at once instead of each waiting out its own wait first.
   */
  private ackWaitLapsed(): void {
    this.ackDelayMs ??= this.ctx.ackWaitMs;
  }

  storageChanged(): void {
    if (this.state !== 'identified') return;
    this.storageDirty = true;
    this.rewind = true;
    if (!this.checkStorage) {
      this.checkStorage = true;
      this.queue = this.queue.then(() => this.afterAcks()).catch((err: unknown) => this.fail(err));
    }
  }

  /** Broadcast versions changed: subscribed connections get one `broadcast` frame with theirs. */
  broadcastChanged(changed: ReadonlyMap<string, string>): void {
    if (this.state !== 'identified') return;
    const mine: Record<string, string> = {};
    for (const [id, version] of changed) if (this.broadcastSubs.has(id)) mine[id] = version;
    if (Object.keys(mine).length > 0) this.port.send([{ messageType: 'broadcast', broadcasts: mine }]);
  }

  private sendNotifications(batch: Notification[], fromStorage: boolean, save: DirectSave | null, onWritten?: (err?: Error) => void): void {
    const frames = [];
    const sentAt = this.ctx.now();
    if (this.unacked === NO_UNACKED) this.unacked = new Map();
    if (this.sent === NO_STRINGS) this.sent = new Set();
    for (const n of batch) {
      this.unacked.set(n.version, { notification: n, fromStorage, save, sentAt });
      if (n.ttl > 0) this.sent.add(n.version);
      frames.push(new NotificationFrame(n));
    }
    this.port.send(frames, onWritten);
    this.ctx.metrics.notifications.inc({ outcome: 'delivered', path: fromStorage ? 'stored' : 'direct' }, batch.length);
  }

  /**
   * autopush's flow control: the next batch is read only once every sent stored message is acked (and, in
   * Pushgate, while fewer than maxUnacked messages are in flight).
   */
  private async afterAcks(): Promise<void> {
    if (this.state !== 'identified' || !this.checkStorage) return;
    if (this.unacked.size >= this.ctx.maxUnacked) return;
    for (const u of this.unacked.values()) if (u.fromStorage) return;
    await this.readStorage();
  }

  private async readStorage(): Promise<void> {
    if (this.reading || !this.checkStorage || this.deferredUser) {
      if (this.deferredUser) this.checkStorage = false;
      return;
    }
    this.reading = true;
    try {
      // A pass reads on from the cursor to the end of storage. One that begins after storage changed starts from the
      // first message (rewind), its first read widened by what this session sent and will skip, so passing those
      // costs one read; it starts over only at a pass's start, so pushes arriving during every read cannot keep it
      // from getting past them.
      let passStart = true;
      for (;;) {
        this.storageDirty = false;
        let limit = this.ctx.storageBatch;
        if (passStart && this.rewind) {
          this.rewind = false;
          this.storageCursor = 0;
          limit += Math.min(this.sent.size, this.ctx.msgLimit);
        }
        passStart = false;
        const read = await this.ctx.store.fetchMessages(this.uaid, this.storageCursor, limit, this.ctx.now());
        if (this.state !== 'identified') return;
        if (read.length > 0) {
          // At most maxUnacked in flight, stored and direct together, a batch at a time; the rest is read after acks.
          const room = Math.min(this.ctx.maxUnacked - this.unacked.size, this.ctx.storageBatch);
          if (room <= 0) return;
          const batch: Notification[] = [];
          for (const n of read) {
            // Messages this session already sent directly (stored for durability) are not sent twice.
            if (!this.channels.has(n.channelID) || this.sent.has(n.version)) {
              this.storageCursor = n.seq;
              continue;
            }
            if (batch.length === room) break;
            batch.push(n);
            this.storageCursor = n.seq;
          }
          if (batch.length === 0) continue;
          this.sentFromStorage += batch.length;
          if (this.sentFromStorage > this.ctx.msgLimit) return await this.resetUaid();
          this.sendNotifications(batch, true, null);
          return;
        }
        // The end of storage. A message saved meanwhile may lie behind the cursor: another pass, from the start.
        if (!this.storageDirty && !this.rewind) {
          this.checkStorage = false;
          this.sentFromStorage = 0;
          return;
        }
        passStart = true;
      }
    } catch (err) {
      // The client stays connected; storage is read again at the next ack or new message.
      this.ctx.log.warn({ err: (err as Error).message }, 'reading stored messages failed');
    } finally {
      this.reading = false;
    }
  }

  /**
   * autopush-rs's check_msg_limit: a session that has read more than msg_limit stored messages in one run drops
   * the user agent (what was read before is delivered; this batch is not) and closes with 1000. Its next hello
   * gets a new uaid, so it re-subscribes; senders get 410 from then on.
   */
  private async resetUaid(): Promise<void> {
    try {
      await this.ctx.store.removeUser(this.uaid);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'could not reset a uaid over msg_limit');
    }
    this.ctx.metrics.notifications.inc({ outcome: 'uaid_reset', path: 'stored' });
    // The uaid and its messages are gone: nothing left to save.
    for (const u of this.unacked.values()) void u.save?.release();
    this.unacked.clear();
    this.close(CloseCode.normal, 'too many stored messages: the uaid was reset');
  }

  // --- closing ------------------------------------------------------------------------------------

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.ctx.metrics.closes.inc({ code: String(code) });
    this.port.close(code, reason);
    void this.onClosed();
  }

  private fail(err: unknown): void {
    this.ctx.log.error({ err: (err as Error)?.message }, 'websocket session failed');
    this.close(CloseCode.internalError, 'internal error');
  }

  /**
   * Direct messages the client never acked and that are not durable yet are stored, so a disconnect loses nothing;
   * those still waiting for their ack are saved now, and their senders answered once that save commits.
   */
  private async finish(): Promise<void> {
    const wasIdentified = this.state === 'identified';
    this.state = 'closed';
    this.ctx.metrics.connections.dec();
    if (!wasIdentified) return;
    this.ctx.clients.remove(this);
    const peerId = this.ctx.peerId;
    if (peerId !== null && !this.deferredUser) {
      // Endpoint nodes stop routing here; a newer connection's route (another connectedAt) is left alone.
      this.ctx.store.clearNodeId(this.uaid, this.connectedAt, peerId).catch(() => {});
    }
    const now = this.ctx.now();
    const entries = [...this.unacked.values()];
    this.unacked.clear();
    // Storage may hold messages for this uaid that a newer connection has not read: ones this session was told of and
    // had not read yet, or read and not acked (checkStorage stays set until a read finds nothing more to send).
    const unread = this.checkStorage;
    // All at once: a save still waiting for its ack begins within this call, before anything is awaited, so its wait's
    // timer never saves it un-re-stamped meanwhile; and the saves share the store's group commit.
    const stored = await Promise.all(entries.map((entry) => this.storeUnacked(entry, now)));
    // A newer connection of this uaid may have read storage before those, or the unacked ones saved here, were
    // there: it is told, wherever it is.
    if (unread || stored.includes(true)) this.announceStored();
    // Shutdown closes the store after the sessions: the deletes of what was acked go in before it does.
    await Promise.all(this.deleting);
  }

  /**
   * Messages this session left in storage at its end reach the uaid's newer connection, as autopush-rs's
   * save_and_notify_unacked_direct_notifs has them: the registry tells one on this process and, through a worker's
   * registry, one on a sibling worker (src/cluster/worker.ts); in a fleet, the node the user record names once a newer
   * connection has replaced this one there is sent a notify. Not awaited: nothing is lost if it fails (the messages
   * are stored and read at the next hello), and a shutdown need not wait for a hop to another node.
   */
  private announceStored(): void {
    this.ctx.clients.storageChanged(this.uaid);
    const { peers, peerId, store } = this.ctx;
    if (!peers || peerId === null) return;
    void store
      .getUser(this.uaid)
      .then((user) => {
        if (user && user.connectedAt !== this.connectedAt && onOtherNode(user.peerId, peerId)) return peers.notify(user.peerId, this.uaid);
      })
      .catch(() => {});
  }

  /**
   * One unacked message at the connection's end: stored, re-stamped, unless it is durable already (finish). True when
   * this session saved it (now, or before its end), which a newer connection may not have read.
   */
  private async storeUnacked({ notification, fromStorage, save }: Unacked, now: number): Promise<boolean> {
    if (fromStorage) return false;
    if (notification.ttl === 0 || notification.expiry <= now) {
      void save?.release();
      return false;
    }
    const begun = save?.begun ?? null;
    if (begun && (await begun)) return true;
    try {
      // A fresh ordering key (autopush re-stamps): a newer session that already read past the old one still reads it.
      const restamped = { ...notification, seq: this.ctx.nextSeq() };
      if (save && !begun) {
        if (!(await save.begin(restamped))) throw save.failure instanceof Error ? save.failure : new Error('the save failed');
      } else {
        await this.ctx.store.saveMessage(restamped);
      }
      this.ctx.dashboard?.storedUnacked(restamped);
      return true;
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'could not store an unacked message');
      return false;
    }
  }

  /** Resolves once the session is closed, its unacked messages are stored and its acked ones deleted. */
  async closed(): Promise<void> {
    await this.onClosed();
  }
}

function sameKey(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}
