import { type AnyBulkWriteOperation, Binary, type Collection, MongoBulkWriteError, MongoClient, MongoServerError } from 'mongodb';
import type { ChannelRecord, DashboardMark, DashboardQuery, DashboardRecord, Notification, PushRegistration, Store, Urgency, UserRecord } from './types.js';
import { classifyStoreErrors, mongoUnavailable } from './unavailable.js';
import { storedPayload } from '../webpush/protocol/payload.js';

/** Writes per bulk command: bounded so that one command's reply, and its majority wait, stays small. */
const MAX_BULK = 500;

/** Bound on waiting for a majority to acknowledge a write: past it the write is an outage (503), not a hang. */
export const WRITE_TIMEOUT_MS = 5000;

/**
 * MongoDB's group commit: the message writes of one kind made in one turn of the event loop go to the server as
 * one ordered bulk command, so they share one round trip and one majority wait. The reason is the driver's cost per
 * command, measured here at 400–700 µs of CPU (a `ping` against FerretDB, whatever the server's speed: sessions,
 * server selection, BSON, the connection pool), which made each direct message in a fleet cost a millisecond
 * or more for its save and its delete alone. Each caller's promise settles with its own operation's outcome.
 */
export class BulkQueue<T extends { _id: string }> {
  private pending: { op: AnyBulkWriteOperation<T>; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  /**
   * @param maxInFlight bulk commands outstanding at once. Without a bound, a slow server paces the arrivals one by
   * one (each answer frees one sender, whose next write goes out alone) and every command carries a single write;
   * with it, writes made while the commands are out wait for the next one, so batches grow with the server's latency.
   */
  constructor(
    private readonly collection: Collection<T>,
    private readonly maxInFlight = 4,
  ) {}

  add(op: AnyBulkWriteOperation<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.pending.length === 0) return;
    this.scheduled = true;
    // At the end of this turn, so that every write made in it goes in the same command.
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.pending.splice(0, MAX_BULK);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
      this.schedule();
    });
  }

  private async run(batch: typeof this.pending): Promise<void> {
    if (batch.length === 0) return;
    try {
      // Ordered: two writes of one _id in a batch (a topic replaced twice) apply in the order they were made.
      await this.collection.bulkWrite(
        batch.map((b) => b.op),
        { ordered: true },
      );
      for (const b of batch) b.resolve();
    } catch (err) {
      const first = err instanceof MongoBulkWriteError && !err.writeConcernError ? [err.writeErrors].flat()[0] : undefined;
      if (first === undefined) {
        // Not one operation's fault (unreachable, no majority in time): every write of the batch is in doubt.
        for (const b of batch) b.reject(err);
        return;
      }
      // An ordered bulk stops at its first failing operation: those before it are written, those after it are not.
      const failed = first.index;
      for (const b of batch.slice(0, failed)) b.resolve();
      batch[failed]?.reject(new MongoServerError({ message: first.errmsg ?? 'write failed', code: first.code }));
      await this.run(batch.slice(failed + 1));
    }
  }
}

/**
 * The MongoDB backend (official driver). Collections and their keys:
 * - `users` `{_id: uaid, routerType, routerData, connectedAt, peerId}`; shard key `{_id: "hashed"}`
 * - `channels` `{_id: "uaid:chid", uaid, keyHash}`; index and shard key `{uaid: "hashed"}`… see README
 * - `messages` `{_id, uaid, seq, chid, …, expiry: Date}`; `_id` is "uaid:s:seq:tag" (tag: messageId), or "uaid:t:chid:topic" for a
 *   message with a Topic, so a topic holds one document, replaced in place (no partial unique index needed);
 *   index `{uaid: 1, seq: 1}`, TTL index on `expiry`; shard key `{uaid: "hashed"}`.
 * Every hot query names one uaid, so on a sharded cluster it targets one shard. Races are decided by
 * conditional single-document updates on `connectedAt` (autopush's rule); nothing needs transactions.
 */

interface UserDoc {
  _id: string;
  routerType: string;
  routerData: Record<string, unknown> | null;
  connectedAt: number;
  peerId: string | null;
}

interface ChannelDoc {
  _id: string;
  uaid: string;
  chid: string;
  keyHash: Binary | null;
}

interface MessageDoc {
  _id: string;
  uaid: string;
  seq: number;
  chid: string;
  version: string;
  ttl: number;
  expiry: Date;
  topic: string | null;
  urgency: string;
  data: string | null;
  headers: Record<string, string> | null;
  timestamp: number;
  dashboardKey?: string;
}

type PushRegistrationDoc = Omit<PushRegistration, 'node'> & { _id: string };

interface DashboardKeyDoc {
  _id: string;
  createdAt: number;
}

type DashboardRecordDoc = DashboardRecord & { _id: string };

const DUPLICATE_KEY = 11000;

/**
 * A message's _id: its topic's slot, or its seq and a tag of its version (the last 16 characters of the Fernet
 * token, its HMAC): two messages that two processes of a fleet stamped with the same seq keep two documents
 * (Store.saveMessage), and saving one message again replaces it.
 */
function messageId(m: { uaid: string; seq: number; version: string; channelID: string; topic: string | null }): string {
  return m.topic !== null ? `${m.uaid}:t:${m.channelID}:${m.topic}` : `${m.uaid}:s:${m.seq}:${m.version.replace(/=+$/, '').slice(-16)}`;
}

/** The _id a message without a topic had until 2026-11-24 (no version tag): deletes still find those documents. */
function legacyMessageId(m: { uaid: string; seq: number }): string {
  return `${m.uaid}:s:${m.seq}`;
}

function toMessage(d: MessageDoc): Notification {
  return {
    uaid: d.uaid,
    channelID: d.chid,
    seq: d.seq,
    version: d.version,
    ttl: d.ttl,
    expiry: d.expiry.getTime(),
    topic: d.topic,
    urgency: d.urgency as Urgency,
    data: storedPayload(d.data),
    headers: d.headers,
    timestamp: d.timestamp,
    ...(typeof d.dashboardKey === 'string' ? { dashboardKey: d.dashboardKey } : {}),
  };
}

export class MongoStore implements Store {
  private constructor(
    private readonly client: MongoClient,
    private readonly users: Collection<UserDoc>,
    private readonly channels: Collection<ChannelDoc>,
    private readonly messages: Collection<MessageDoc>,
    private readonly registrations: Collection<PushRegistrationDoc>,
    private readonly dashboardKeys: Collection<DashboardKeyDoc>,
    private readonly dashboardRecords: Collection<DashboardRecordDoc>,
  ) {
    this.messageWrites = new BulkQueue(messages);
  }

  /** Saves and forgets of messages, in the order they were made, one bulk command per turn. */
  private readonly messageWrites: BulkQueue<MessageDoc>;

  /** Connects and creates the collections' indexes (idempotent). */
  static async connect(url: string): Promise<MongoStore> {
    const params = new URL(url).searchParams;
    const client = new MongoClient(url, {
      // Fail fast during an outage so senders get 503 quickly; the driver reconnects by itself.
      serverSelectionTimeoutMS: 5000,
      connectTimeoutMS: 5000,
      maxPoolSize: 50,
      // A 201 promises the message survives a failover: a write counts once a majority has it (issue 9 §12),
      // bounded in time. `w` or `wtimeoutMS` in the store URL take precedence.
      writeConcern: { w: (params.get('w') ?? 'majority') as 'majority', wtimeoutMS: Number(params.get('wtimeoutMS') ?? WRITE_TIMEOUT_MS) },
    });
    await client.connect();
    const db = client.db(new URL(url).pathname.slice(1) || 'pushgate');
    const store = new MongoStore(
      client,
      db.collection('users'),
      db.collection('channels'),
      db.collection('messages'),
      db.collection('push_registrations'),
      db.collection('dashboard_keys'),
      db.collection('dashboard_records'),
    );
    await store.registrations.createIndex({ account: 1, deviceId: 1 }, { unique: true });
    await store.channels.createIndex({ uaid: 1 });
    await store.dashboardRecords.createIndex({ keyHash: 1, ref: -1 });
    await store.dashboardRecords.createIndex({ id: 1 });
    await store.messages.createIndex({ uaid: 1, seq: 1 });
    await store.messages.createIndex({ uaid: 1, chid: 1 });
    try {
      await store.messages.createIndex({ expiry: 1 }, { expireAfterSeconds: 0, name: 'expiry_ttl' });
    } catch {
      // The server refused a TTL index (FerretDB v1): the gateway's periodic sweep does the work.
      await store.messages.createIndex({ expiry: 1 }, { name: 'expiry' });
    }
    return store;
  }

  async addUser(user: UserRecord): Promise<boolean> {
    const { uaid, ...fields } = user;
    try {
      // Matches an older record (takes it over) or none (inserts); a newer record makes the upsert's
      // insert collide on _id, which means this connection lost the race.
      const r = await this.users.updateOne({ _id: uaid, connectedAt: { $lt: user.connectedAt } }, { $set: fields }, { upsert: true });
      return r.modifiedCount + r.upsertedCount > 0 || r.matchedCount > 0;
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      // Another connection inserted the record first. Take it over if it is older; MongoDB retries such
      // an upsert itself in some versions, other wire-compatible servers do not, so we decide here.
      const r = await this.users.updateOne({ _id: uaid, connectedAt: { $lt: user.connectedAt } }, { $set: fields });
      return r.matchedCount > 0;
    }
  }

  async getUser(uaid: string): Promise<UserRecord | null> {
    const d = await this.users.findOne({ _id: uaid });
    return d ? { uaid: d._id, routerType: d.routerType, routerData: d.routerData, connectedAt: d.connectedAt, peerId: d.peerId } : null;
  }

  async updateUser(user: UserRecord): Promise<boolean> {
    const { uaid, ...fields } = user;
    const r = await this.users.updateOne({ _id: uaid, connectedAt: { $lte: user.connectedAt } }, { $set: fields });
    return r.matchedCount > 0;
  }

  async clearNodeId(uaid: string, connectedAt: number, peerId: string): Promise<boolean> {
    const r = await this.users.updateOne({ _id: uaid, connectedAt, peerId }, { $set: { peerId: null } });
    return r.modifiedCount > 0;
  }

  async removeUser(uaid: string): Promise<void> {
    // Children before the root (issue 9 §12): a crash between these leaves a user with fewer channels or
    // messages (a push to a removed channel answers 410; the next removal finishes the job), never messages
    // or channels without the user record that would let anything find and remove them.
    await this.messages.deleteMany({ uaid });
    await this.channels.deleteMany({ uaid });
    await this.users.deleteOne({ _id: uaid });
  }

  async addChannel(uaid: string, channel: ChannelRecord): Promise<void> {
    await this.channels.updateOne(
      { _id: `${uaid}:${channel.channelID}` },
      { $set: { uaid, chid: channel.channelID, keyHash: channel.keyHash ? new Binary(channel.keyHash) : null } },
      { upsert: true },
    );
  }

  private toChannel(d: ChannelDoc): ChannelRecord {
    return { channelID: d.chid, keyHash: d.keyHash ? Buffer.from(d.keyHash.buffer) : null };
  }

  async getChannel(uaid: string, channelID: string): Promise<ChannelRecord | null> {
    const d = await this.channels.findOne({ _id: `${uaid}:${channelID}` });
    return d ? this.toChannel(d) : null;
  }

  async getChannels(uaid: string): Promise<ChannelRecord[]> {
    return (await this.channels.find({ uaid }).toArray()).map((d) => this.toChannel(d));
  }

  async removeChannel(uaid: string, channelID: string): Promise<boolean> {
    // Messages first: a crash in between leaves the channel without its messages, never messages of an
    // unregistered channel that a later hello would deliver.
    await this.messages.deleteMany({ uaid, chid: channelID });
    const r = await this.channels.deleteOne({ _id: `${uaid}:${channelID}` });
    return r.deletedCount > 0;
  }

  async saveMessage(m: Notification): Promise<void> {
    const doc: MessageDoc = {
      _id: messageId(m),
      uaid: m.uaid,
      seq: m.seq,
      chid: m.channelID,
      version: m.version,
      ttl: m.ttl,
      expiry: new Date(m.expiry),
      topic: m.topic,
      urgency: m.urgency,
      data: m.data,
      headers: m.headers,
      timestamp: m.timestamp,
      ...(m.dashboardKey !== undefined ? { dashboardKey: m.dashboardKey } : {}),
    };
    if (m.topic === null) {
      await this.messageWrites.add({ replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } });
      return;
    }
    // A message with a Topic replaces its predecessor in place (RFC 8030 §5.4), unless that one is newer
    // (Store.saveMessage): an insert if the topic's document is missing, and a replace if it is not newer. Each is one
    // atomic write whichever runs first. A conditional upsert would do it in one, but where a newer document holds the
    // _id its insert fails with a duplicate key, and FerretDB 1.24 reports that error against another write of the bulk.
    const { _id, ...fields } = doc;
    await Promise.all([
      this.messageWrites.add({ updateOne: { filter: { _id }, update: { $setOnInsert: fields }, upsert: true } }),
      this.messageWrites.add({ replaceOne: { filter: { _id, seq: { $lte: doc.seq } }, replacement: doc } }),
    ]);
  }

  async fetchMessages(uaid: string, afterSeq: number, limit: number, now: number): Promise<Notification[]> {
    const docs = await this.messages
      .find({ uaid, seq: { $gt: afterSeq }, expiry: { $gt: new Date(now) } })
      .sort({ seq: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toMessage);
  }

  async countMessages(uaid: string, cap: number): Promise<number> {
    return this.messages.countDocuments({ uaid, expiry: { $gt: new Date() } }, { limit: cap });
  }

  async removeMessage(uaid: string, seq: number, version: string): Promise<boolean> {
    // By uaid, seq and version: a topic message replaced meanwhile, or another message at the seq, is left alone.
    const r = await this.messages.deleteOne({ uaid, seq, version });
    return r.deletedCount > 0;
  }

  async removeTopicMessage(uaid: string, channelID: string, topic: string): Promise<boolean> {
    const r = await this.messages.deleteOne({ _id: `${uaid}:t:${channelID}:${topic}` });
    return r.deletedCount > 0;
  }

  async sweepExpired(now: number): Promise<number> {
    const r = await this.messages.deleteMany({ expiry: { $lte: new Date(now) } });
    return r.deletedCount;
  }

  async savePushRegistration(reg: PushRegistration): Promise<PushRegistration> {
    const { node, ...fields } = reg;
    const existing = await this.registrations.findOne({ account: reg.account, deviceId: reg.deviceId }, { projection: { _id: 1 } });
    const id = existing?._id ?? node;
    try {
      await this.registrations.replaceOne({ _id: id }, fields, { upsert: true });
    } catch (err) {
      // Two registrations of the same device raced: the other one's node wins, ours updates it.
      if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      const winner = await this.registrations.findOne({ account: reg.account, deviceId: reg.deviceId }, { projection: { _id: 1 } });
      if (!winner) throw err;
      await this.registrations.replaceOne({ _id: winner._id }, fields);
      return { ...reg, node: winner._id };
    }
    return { ...reg, node: id };
  }

  async getPushRegistration(node: string): Promise<PushRegistration | null> {
    const d = await this.registrations.findOne({ _id: node });
    if (!d) return null;
    const { _id, ...rest } = d;
    return { node: _id, ...rest };
  }

  async removePushRegistration(node: string): Promise<boolean> {
    return (await this.registrations.deleteOne({ _id: node })).deletedCount > 0;
  }

  async health(): Promise<void> {
    await this.client.db('admin').command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // XMPP registrations by device and per-account caps (issue 9 item 5, issue 12).
  async findPushRegistration(account: string, deviceId: string): Promise<PushRegistration | null> {
    const d = await this.registrations.findOne({ account, deviceId });
    if (!d) return null;
    const { _id, ...rest } = d;
    return { node: _id, ...rest };
  }

  async countPushRegistrations(account: string, cap: number): Promise<number> {
    return this.registrations.countDocuments({ account }, { limit: cap });
  }

  // Megaphone broadcasts: one document per broadcast id.
  private get broadcasts(): Collection<{ _id: string; version: string }> {
    return this.client.db(this.users.dbName).collection('broadcasts');
  }

  async putBroadcast(id: string, version: string): Promise<boolean> {
    const res = await this.broadcasts.updateOne({ _id: id }, { $set: { version } }, { upsert: true });
    return res.upsertedCount > 0;
  }

  async getBroadcasts(): Promise<Record<string, string>> {
    const docs = await this.broadcasts.find({}).toArray();
    return Object.fromEntries(docs.map((d) => [d._id, d.version]));
  }

  // --- websocket door: bounded channel loading (issue 9 item 7) ---
  async getChannelsPage(uaid: string, afterChannelID: string, limit: number): Promise<ChannelRecord[]> {
    // _id is `${uaid}:${chid}`: with the uaid prefix fixed, _id order is channelID order and the _id index serves it.
    const docs = await this.channels
      .find({ uaid, _id: { $gt: `${uaid}:${afterChannelID}` } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map((d) => this.toChannel(d));
  }

  // Developer dashboard (src/dashboard)
  async addDashboardKey(keyHash: string, now: number): Promise<void> {
    await this.dashboardKeys.updateOne({ _id: keyHash }, { $setOnInsert: { createdAt: now } }, { upsert: true });
  }

  async removeDashboardKey(keyHash: string): Promise<boolean> {
    const r = await this.dashboardKeys.deleteOne({ _id: keyHash });
    await this.dashboardRecords.deleteMany({ keyHash });
    return r.deletedCount > 0;
  }

  async listDashboardKeys(): Promise<string[]> {
    return (await this.dashboardKeys.find({}, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
  }

  async saveDashboardRecords(records: DashboardRecord[]): Promise<void> {
    if (records.length === 0) return;
    const keys = [...new Set(records.map((r) => r.keyHash))];
    const optedIn = new Set((await this.dashboardKeys.find({ _id: { $in: keys } }, { projection: { _id: 1 } }).toArray()).map((d) => d._id));
    const ops = records
      .filter((r) => optedIn.has(r.keyHash))
      .map((r) => ({ replaceOne: { filter: { _id: `${r.keyHash}:${r.ref}` }, replacement: { _id: `${r.keyHash}:${r.ref}`, ...r }, upsert: true } }));
    if (ops.length > 0) await this.dashboardRecords.bulkWrite(ops, { ordered: false });
  }

  async listDashboardRecords(keyHash: string, q: DashboardQuery): Promise<DashboardRecord[]> {
    const filter: Record<string, unknown> = { keyHash };
    if (q.before !== undefined) filter['ref'] = { $lt: q.before };
    if (q.outcome !== undefined) filter['outcome'] = q.outcome;
    if (q.since !== undefined || q.until !== undefined) {
      filter['receivedAt'] = { ...(q.since !== undefined ? { $gte: q.since } : {}), ...(q.until !== undefined ? { $lte: q.until } : {}) };
    }
    const docs = await this.dashboardRecords.find(filter).sort({ ref: -1 }).limit(q.limit).toArray();
    return docs.map(({ _id, ...r }) => r);
  }

  async pruneDashboardRecords(keyHash: string, keep: number, since: number): Promise<number> {
    let deleted = (await this.dashboardRecords.deleteMany({ keyHash, receivedAt: { $lt: since } })).deletedCount;
    const [last] = await this.dashboardRecords
      .find({ keyHash }, { projection: { ref: 1 } })
      .sort({ ref: -1 })
      .skip(keep - 1)
      .limit(1)
      .toArray();
    if (last) deleted += (await this.dashboardRecords.deleteMany({ keyHash, ref: { $lt: last.ref } })).deletedCount;
    return deleted;
  }
  // Developer dashboard, fleet events
  async markDashboardRecords(marks: DashboardMark[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const m of marks) {
      let which: Record<string, unknown>;
      if (m.id !== null) which = { id: m.id };
      else if (m.replaced && m.keyHash !== null) {
        // Few records share a key, subscription and Topic: the unexpired ones are picked here, not by a $expr.
        const { subscription, topic, before } = m.replaced;
        const candidates = await this.dashboardRecords
          .find({ keyHash: m.keyHash, subscription, topic, receivedAt: { $lt: before }, outcome: { $in: m.from } })
          .project<{ _id: string; receivedAt: number; ttl: number | null }>({ _id: 1, receivedAt: 1, ttl: 1 })
          .toArray();
        which = { _id: { $in: candidates.filter((c) => c.receivedAt + (c.ttl ?? 0) * 1000 > before).map((c) => c._id) } };
      } else {
        out.push(false);
        continue;
      }
      const filter = { ...(m.keyHash !== null ? { keyHash: m.keyHash } : {}), ...which, outcome: { $in: m.from } };
      const r = await this.dashboardRecords.updateMany(filter, { $set: { outcome: m.outcome, deliveredAt: m.deliveredAt } });
      out.push(r.modifiedCount > 0);
    }
    return out;
  }

  // Acked messages.
  async forgetMessage(m: Pick<Notification, 'uaid' | 'seq' | 'version' | 'channelID' | 'topic'>): Promise<void> {
    // By _id, which the server finds without a scan, and seq: a topic message replaced meanwhile is left alone.
    const deletes = [this.messageWrites.add({ deleteOne: { filter: { _id: messageId(m), seq: m.seq, version: m.version } } })];
    if (m.topic === null) deletes.push(this.messageWrites.add({ deleteOne: { filter: { _id: legacyMessageId(m), version: m.version } } }));
    await Promise.all(deletes);
  }
}

classifyStoreErrors(MongoStore.prototype, mongoUnavailable, 'MongoDB');
