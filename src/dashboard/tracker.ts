import { createHmac, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { DashboardMark, DashboardRecord, Notification, Store } from '../store/index.js';
import { BoundedMap } from '../util/bounded-map.js';
import { parseEndpointToken, vapidKeyHashOf } from '../webpush/protocol/endpoint-token.js';
import type { ApiError } from '../webpush/protocol/errors.js';
import type { MultiFernet } from '../webpush/protocol/fernet.js';
import { extractVapid, type VapidVerifier } from '../webpush/endpoint/vapid.js';
import type { RouteResult } from '../webpush/endpoint/router.js';
import type { Outcome } from './outcomes.js';

/**
 * Records what happens to the pushes of opted-in VAPID keys (the developer dashboard's data), one method per event.
 * The push path pays nothing for keys that did not opt in (one Set lookup, and only when some key opted in) and no
 * storage round trip for those that did: records go into a write-behind batch flushed every PUSHGATE_DASHBOARD_FLUSH_MS
 * or at BATCH_SIZE, and the set of opted-in keys is refreshed from the store so every peer of a fleet records.
 * Later events of a message (ack, delete, topic replacement) find its record in a bounded in-memory index on the
 * peer that accepted it; on any other process (a connection peer of a split fleet, a sibling worker) an ack of a
 * message tagged with `Notification.dashboardKey`, or a DELETE, becomes a mark by message id, batched like records.
 * Metadata only: never a payload, never an endpoint token.
 */

/** Records waiting for a flush before one is started at once. */
const BATCH_SIZE = 500;
/** Records waiting at most (a store outage must not grow memory): beyond it new records are dropped and counted. */
const PENDING_LIMIT = 20_000;
/** Messages whose later events (ack, delete, replacement) can still be matched to their record on this peer. */
const INFLIGHT_LIMIT = 100_000;
/** Flushes between refreshes of the opted-in key set from the store. */
const REFRESH_EVERY = 10;
/** Records of one message id kept in the index: a Topic reuses the id (RFC 8030 §5.4). */
const PER_ID = 4;
/** Flushes a mark that found no record is retried: the accepting process may not have flushed the record yet. */
const MARK_TRIES = 5;

export interface TrackerOptions {
  store: Store;
  fernet: MultiFernet;
  vapid: VapidVerifier;
  /** Keys the per-key subscription hashes; shared by the fleet (derived from the crypto key). */
  secret: Buffer;
  maxMessages: number;
  maxHours: number;
  /** Opted-in keys at most: anyone can make keys, so this is what bounds the storage (keys × maxMessages). */
  maxKeys: number;
  flushMs: number;
  log: { warn(obj: object, msg: string): void };
}

/** The message as the endpoint accepted it (no payload: its size only). */
export interface AcceptedPush {
  uaid: string;
  channelID: string;
  ttl: number;
  topic: string | null;
  urgency: string;
  size: number;
}

export class DashboardTracker {
  private keys = new Set<string>();
  private pending = new Map<string, DashboardRecord>();
  /** Marks by message id for records another process holds, with the flushes left to find them. */
  private marks: { mark: DashboardMark; tries: number }[] = [];
  private readonly inflight = new BoundedMap<string, DashboardRecord[]>(INFLIGHT_LIMIT);
  /** The waiting message per subscription and Topic (each message id is a fresh Fernet token, so ids differ). */
  private readonly topics = new BoundedMap<string, DashboardRecord>(INFLIGHT_LIMIT);
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private flushes = 0;
  /** Records dropped because the store could not keep up (exposed for tests and logs). */
  dropped = 0;

  constructor(private readonly opts: TrackerOptions) {}

  /** Reads the opted-in keys once; a store that cannot answer yet does not stop the gateway (the next refresh retries). */
  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'dashboard keys not read'));
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
  }

  /** The tag for a Notification signed with an opted-in key (`Notification.dashboardKey`), or undefined. */
  tag(keyHash: Buffer | null | undefined): string | undefined {
    return this.tracked(keyHash) ?? undefined;
  }

  /** The hex key hash of an opted-in key, or null. */
  private tracked(keyHash: Buffer | null | undefined): string | null {
    if (!keyHash || this.keys.size === 0) return null;
    const hex = keyHash.toString('hex');
    return this.keys.has(hex) ? hex : null;
  }

  subscriptionHash(keyHash: string, uaid: string, channelID: string): string {
    // Keyed by the server secret and the developer's key: the same subscription hashes differently per key.
    const perKey = createHmac('sha256', this.opts.secret).update(keyHash).digest();
    return createHmac('sha256', perKey).update(`${uaid}:${channelID}`).digest('base64url').slice(0, 22);
  }

  // Events from the endpoint (src/webpush/endpoint/routes.ts)

  /** A push was accepted and routed. `keyHash` is the verified VAPID key's sha256 (null: no VAPID). */
  accepted(keyHash: Buffer | null | undefined, push: AcceptedPush, result: RouteResult, now = Date.now()): void {
    const key = this.tracked(keyHash);
    if (key === null) return;
    const outcome: Outcome = result.path === 'direct' ? 'delivered' : result.path;
    const record: DashboardRecord = {
      keyHash: key,
      ref: ref(now, result.messageId),
      id: result.messageId,
      receivedAt: now,
      ttl: push.ttl,
      topic: push.topic,
      urgency: push.urgency,
      size: push.size,
      subscription: this.subscriptionHash(key, push.uaid, push.channelID),
      outcome,
      status: null,
      errno: null,
      detail: outcome === 'bridged' ? (result.provider ?? 'accepted by the push provider') : null,
      deliveredAt: null,
    };
    const same = this.inflight.get(result.messageId) ?? [];
    // RFC 8030 §5.4: a stored message with a Topic replaces the one waiting on the same subscription with that Topic.
    if (result.path === 'stored' && push.topic !== null) {
      const topicKey = `${push.uaid}:${push.channelID}:${push.topic}`;
      const waiting = this.topics.get(topicKey);
      if (waiting?.outcome === 'stored') this.update(waiting, { outcome: 'replaced' });
      // The waiting message may have been accepted by another process: the store finds the key's older record.
      else
        this.mark({
          keyHash: key,
          id: null,
          replaced: { subscription: record.subscription!, topic: push.topic, before: now },
          from: ['stored'],
          outcome: 'replaced',
          deliveredAt: null,
        });
      this.topics.set(topicKey, record);
    }
    this.inflight.set(result.messageId, [record, ...same].slice(0, PER_ID));
    this.enqueue(record);
  }

  /**
   * A push was refused. Recorded only when its VAPID token is valid for an opted-in key: nobody else can make
   * records appear in a developer's dashboard. Runs off the response path.
   */
  rejected(headers: IncomingHttpHeaders, params: unknown, err: ApiError, now = Date.now()): void {
    if (this.keys.size === 0) return;
    let creds;
    try {
      creds = extractVapid(headers);
    } catch {
      return;
    }
    const keyHash = creds ? vapidKeyHashOf(creds.key) : null;
    const key = keyHash ? this.tracked(keyHash) : null;
    if (!creds || key === null) return;
    this.opts.vapid.verify(creds, now / 1000).then(
      () => {
        const p = (params ?? {}) as { token?: unknown; apiVersion?: unknown };
        const version = p.apiVersion === 'v2' ? 'v2' : 'v1';
        const info = typeof p.token === 'string' ? parseEndpointToken(this.opts.fernet, p.token, version) : null;
        const ttl = headerValue(headers, 'ttl');
        const length = headerValue(headers, 'content-length');
        this.enqueue({
          keyHash: key,
          ref: ref(now, randomUUID()),
          id: null,
          receivedAt: now,
          ttl: ttl !== null && /^\d{1,10}$/.test(ttl) ? Number(ttl) : null,
          topic: headerValue(headers, 'topic')?.slice(0, 64) ?? null,
          urgency: headerValue(headers, 'urgency')?.slice(0, 16) ?? null,
          size: length !== null && /^\d{1,10}$/.test(length) ? Number(length) : 0,
          subscription: info ? this.subscriptionHash(key, info.uaid, info.channelID) : null,
          outcome: 'rejected',
          status: err.status,
          errno: err.errno,
          detail: err.message.slice(0, 200),
          deliveredAt: null,
        });
      },
      () => {},
    );
  }

  /** The sender deleted a waiting message (DELETE /m/{id}, RFC 8030 §7.3). */
  deleted(messageId: string): void {
    const waiting = this.inflight.get(messageId)?.find((r) => r.outcome === 'stored');
    if (waiting) this.update(waiting, { outcome: 'deleted' });
    // Accepted elsewhere: the DELETE does not say whose it was, the id (a unique Fernet token) finds it. Only when
    // some key opted in (DELETE is rare and off the push path).
    else if (this.keys.size > 0) this.mark({ keyHash: null, id: messageId, from: ['stored'], outcome: 'deleted', deliveredAt: null });
  }

  // Events from the websocket session (src/webpush/connection/session.ts)

  /** The browser acked a message (RFC 8030 §6.2); `fromStorage` when it was delivered from storage. */
  acked(n: Notification, fromStorage: boolean, now = Date.now()): void {
    const records = this.inflight.get(n.version);
    const from = fromStorage ? 'stored' : 'delivered';
    const outcome = fromStorage ? 'delivered_from_storage' : 'delivered';
    const record = records?.find((r) => r.deliveredAt === null && r.outcome === from);
    if (record) this.update(record, { outcome, deliveredAt: now });
    // Accepted by another process: only a tagged message costs a mark (an untracked one has no dashboardKey).
    else if (n.dashboardKey !== undefined) this.mark({ keyHash: n.dashboardKey, id: n.version, from: [from], outcome, deliveredAt: now });
  }

  /** A direct message the browser never acked was stored when its connection closed. */
  storedUnacked(n: Notification): void {
    const record = this.inflight.get(n.version)?.find((r) => r.outcome === 'delivered' && r.deliveredAt === null);
    if (record) this.update(record, { outcome: 'stored' });
    else if (n.dashboardKey !== undefined) this.mark({ keyHash: n.dashboardKey, id: n.version, from: ['delivered'], outcome: 'stored', deliveredAt: null });
  }

  // The dashboard API (src/dashboard/routes.ts)

  /** Opts a key in; false when the dashboard already holds PUSHGATE_DASHBOARD_MAX_KEYS other keys. */
  async optIn(keyHash: string): Promise<boolean> {
    if (!this.keys.has(keyHash)) {
      await this.refresh();
      if (!this.keys.has(keyHash) && this.keys.size >= this.opts.maxKeys) return false;
    }
    await this.opts.store.addDashboardKey(keyHash, Date.now());
    this.keys.add(keyHash);
    return true;
  }

  /** Opts out and erases: waiting records of the key are dropped first, then the store forgets the key and its records. */
  async optOut(keyHash: string): Promise<boolean> {
    this.keys.delete(keyHash);
    for (const [k, r] of this.pending) if (r.keyHash === keyHash) this.pending.delete(k);
    await this.flushing;
    return this.opts.store.removeDashboardKey(keyHash);
  }

  isOptedIn(keyHash: string): boolean {
    return this.keys.has(keyHash);
  }

  /** Writes what is waiting; also refreshes the key set every REFRESH_EVERY flushes. Never throws. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => (this.flushing = null));
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    if (this.pending.size > 0 || this.marks.length > 0) await this.flush();
  }

  private async doFlush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending = new Map();
    try {
      if (batch.length > 0) {
        await this.opts.store.saveDashboardRecords(batch);
        const since = Date.now() - this.opts.maxHours * 3_600_000;
        for (const key of new Set(batch.map((r) => r.keyHash))) await this.opts.store.pruneDashboardRecords(key, this.opts.maxMessages, since);
      }
    } catch (err) {
      // Metadata is best effort: a store outage costs dashboard rows, never a push.
      this.dropped += batch.length;
      this.opts.log.warn({ err: (err as Error).message, records: batch.length }, 'dashboard records not saved');
    }
    await this.flushMarks();
    if (++this.flushes % REFRESH_EVERY === 0) {
      await this.refresh().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'dashboard keys not refreshed'));
    }
  }

  /** Applies the waiting marks; one that found no record is retried (its record may not be written yet). */
  private async flushMarks(): Promise<void> {
    if (this.marks.length === 0) return;
    const batch = this.marks;
    this.marks = [];
    try {
      const found = await this.opts.store.markDashboardRecords(batch.map((m) => m.mark));
      batch.forEach((m, i) => {
        if (!found[i] && m.tries > 1) this.marks.push({ mark: m.mark, tries: m.tries - 1 });
      });
    } catch (err) {
      this.dropped += batch.length;
      this.opts.log.warn({ err: (err as Error).message, marks: batch.length }, 'dashboard marks not saved');
    }
  }

  private mark(mark: DashboardMark): void {
    if (this.marks.length >= PENDING_LIMIT) {
      this.dropped++;
      return;
    }
    this.marks.push({ mark, tries: MARK_TRIES });
    if (this.marks.length >= BATCH_SIZE) void this.flush();
  }

  private async refresh(): Promise<void> {
    this.keys = new Set(await this.opts.store.listDashboardKeys());
  }

  private update(record: DashboardRecord, change: Partial<DashboardRecord>): void {
    Object.assign(record, change);
    this.enqueue(record);
  }

  private enqueue(record: DashboardRecord): void {
    const k = `${record.keyHash}:${record.ref}`;
    if (!this.pending.has(k) && this.pending.size >= PENDING_LIMIT) {
      this.dropped++;
      return;
    }
    // The record object is shared with the index, so the flush writes its latest state.
    this.pending.set(k, record);
    if (this.pending.size >= BATCH_SIZE) void this.flush();
  }
}

/** Sortable by time, unique per key. */
function ref(now: number, id: string): string {
  return `${String(now).padStart(15, '0')}:${id}`;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? null;
}
