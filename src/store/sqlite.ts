import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ChannelRecord, DashboardMark, DashboardQuery, DashboardRecord, Notification, PushRegistration, Store, Urgency, UserRecord } from './types.js';
import { StoreUnavailableError } from './types.js';
import { classifyStoreErrors, sqliteUnavailable } from './unavailable.js';
import { storedPayload } from '../webpush/protocol/payload.js';

/**
 * The embedded store: SQLite through better-sqlite3 in WAL mode. Statements are prepared once; every
 * lookup is by primary key or an index range, never a scan. Reads run at once. Writes issued in the same
 * turn of the event loop are committed together in one transaction (group commit), and each caller's promise
 * settles only after that commit, so nobody acts on a write that is not durable yet.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  uaid TEXT PRIMARY KEY,
  router_type TEXT NOT NULL,
  router_data TEXT,
  connected_at INTEGER NOT NULL,
  node_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
  uaid TEXT NOT NULL,
  chid TEXT NOT NULL,
  key_hash BLOB,
  PRIMARY KEY (uaid, chid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  uaid TEXT NOT NULL,
  seq INTEGER NOT NULL,
  chid TEXT NOT NULL,
  version TEXT NOT NULL,
  ttl INTEGER NOT NULL,
  expiry INTEGER NOT NULL,
  topic TEXT,
  urgency TEXT NOT NULL,
  data TEXT,
  headers TEXT,
  timestamp INTEGER NOT NULL,
  PRIMARY KEY (uaid, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_topic ON messages (uaid, chid, topic) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_chid ON messages (uaid, chid);
CREATE INDEX IF NOT EXISTS messages_expiry ON messages (expiry);
CREATE TABLE IF NOT EXISTS push_registrations (
  node TEXT PRIMARY KEY,
  account TEXT NOT NULL,
  device_id TEXT NOT NULL,
  doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS push_registrations_device ON push_registrations (account, device_id);
CREATE TABLE IF NOT EXISTS dashboard_keys (
  key_hash TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboard_records (
  key_hash TEXT NOT NULL,
  ref TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (key_hash, ref)
) WITHOUT ROWID;
`;

interface UserRow {
  uaid: string;
  router_type: string;
  router_data: string | null;
  connected_at: number;
  node_id: string | null;
}

interface MessageRow {
  uaid: string;
  seq: number;
  chid: string;
  version: string;
  ttl: number;
  expiry: number;
  topic: string | null;
  urgency: string;
  data: string | null;
  headers: string | null;
  timestamp: number;
  dashboard_key: string | null;
}

/** An INSERT INTO messages's parameters: uaid, seq, chid, version, ttl, expiry, topic, urgency, data, headers, timestamp, dashboard_key. */
type MessageArgs = [string, number, string, string, number, number, string | null, string, string | null, string | null, number, string | null];

function toUser(row: UserRow): UserRecord {
  return {
    uaid: row.uaid,
    routerType: row.router_type,
    routerData: row.router_data ? (JSON.parse(row.router_data) as Record<string, unknown>) : null,
    connectedAt: row.connected_at,
    peerId: row.node_id,
  };
}

function toMessage(row: MessageRow): Notification {
  return {
    uaid: row.uaid,
    channelID: row.chid,
    seq: row.seq,
    version: row.version,
    ttl: row.ttl,
    expiry: row.expiry,
    topic: row.topic,
    urgency: row.urgency as Urgency,
    data: storedPayload(row.data),
    headers: row.headers ? (JSON.parse(row.headers) as Record<string, string>) : null,
    timestamp: row.timestamp,
    ...(row.dashboard_key !== null ? { dashboardKey: row.dashboard_key } : {}),
  };
}

/**
 * How far past its seq a message is moved when other messages hold the seqs (Store.saveMessage): processes that
 * stamp the same uaid's messages in the same microsecond are few, so a handful of steps is the most ever needed.
 */
const MAX_SEQ_SHIFT = 1000;

/** How long a statement waits for another process's lock (SQLite's busy_timeout). */
const BUSY_TIMEOUT_MS = 5000;
/** What a synchronous pause waits on (Atomics.wait): nothing ever wakes it. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly txSaveTopic;
  private readonly txRemoveUser;
  private readonly txRemoveChannel;
  private readonly txSaveReg;
  private pending: { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private readonly txBatch;

  constructor(path: string, options: { synchronous: 'normal' | 'full' } = { synchronous: 'normal' }) {
    try {
      if (path !== ':memory:') createPrivate(path);
      this.db = new Database(path);
    } catch (err) {
      throw new StoreUnavailableError(`cannot open SQLite database ${path}: ${(err as Error).message}`, { cause: err });
    }
    this.switchToWal();
    // In WAL mode NORMAL makes a commit durable against a crash of the process (the WAL is written before the
    // promise resolves) and fsyncs only at checkpoints, so a power loss or kernel crash may undo the last commits;
    // FULL fsyncs the WAL at every (group) commit, which survives those too at one fsync per batch. Measured on
    // the direct path FULL costs about half the per-message CPU here (README, Security), hence NORMAL by default.
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // One IMMEDIATE transaction: processes that open the file at once (workers at start, separate processes) take
    // turns behind the busy timeout, so the second sees the first's tables and column instead of adding it again.
    this.db
      .transaction(() => {
        this.db.exec(SCHEMA);
        // Developer dashboard: a database made before the column existed gains it (NULL: untracked).
        if (!(this.db.pragma('table_info(messages)') as { name: string }[]).some((c) => c.name === 'dashboard_key')) {
          this.db.exec('ALTER TABLE messages ADD COLUMN dashboard_key TEXT');
        }
      })
      .immediate();
    const db = this.db;
    this.stmt = {
      insertUser: db.prepare(
        `INSERT INTO users (uaid, router_type, router_data, connected_at, node_id) VALUES (@uaid, @router_type, @router_data, @connected_at, @node_id)
         ON CONFLICT (uaid) DO UPDATE SET router_type = excluded.router_type, router_data = excluded.router_data,
           connected_at = excluded.connected_at, node_id = excluded.node_id
         WHERE users.connected_at < excluded.connected_at`,
      ),
      updateUser: db.prepare(
        `UPDATE users SET router_type = @router_type, router_data = @router_data, connected_at = @connected_at, node_id = @node_id
         WHERE uaid = @uaid AND connected_at <= @connected_at`,
      ),
      clearNode: db.prepare('UPDATE users SET node_id = NULL WHERE uaid = ? AND connected_at = ? AND node_id = ?'),
      getUser: db.prepare<[string], UserRow>('SELECT * FROM users WHERE uaid = ?'),
      deleteUser: db.prepare('DELETE FROM users WHERE uaid = ?'),
      deleteUserChannels: db.prepare('DELETE FROM channels WHERE uaid = ?'),
      deleteUserMessages: db.prepare('DELETE FROM messages WHERE uaid = ?'),
      insertChannel: db.prepare(
        'INSERT INTO channels (uaid, chid, key_hash) VALUES (?, ?, ?) ON CONFLICT (uaid, chid) DO UPDATE SET key_hash = excluded.key_hash',
      ),
      getChannel: db.prepare<[string, string], { chid: string; key_hash: Buffer | null }>('SELECT chid, key_hash FROM channels WHERE uaid = ? AND chid = ?'),
      getChannels: db.prepare<[string], { chid: string; key_hash: Buffer | null }>('SELECT chid, key_hash FROM channels WHERE uaid = ?'),
      deleteChannel: db.prepare('DELETE FROM channels WHERE uaid = ? AND chid = ?'),
      getChannelsPage: db.prepare<[string, string, number], { chid: string; key_hash: Buffer | null }>(
        'SELECT chid, key_hash FROM channels WHERE uaid = ? AND chid > ? ORDER BY chid LIMIT ?',
      ),
      deleteChannelMessages: db.prepare('DELETE FROM messages WHERE uaid = ? AND chid = ?'),
      // Store.saveMessage: nothing is replaced. A conflict is another message holding (uaid, seq), or a newer message
      // holding the topic (a partial unique index); the save then moves on (saveRow).
      insertMessage: db.prepare(
        `INSERT INTO messages (uaid, seq, chid, version, ttl, expiry, topic, urgency, data, headers, timestamp, dashboard_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      // The message itself, at its seq or where a save moved it.
      findMessage: db.prepare<[string, number, number, string], { seq: number }>(
        'SELECT seq FROM messages WHERE uaid = ? AND seq >= ? AND seq < ? AND version = ? LIMIT 1',
      ),
      topicHeld: db.prepare<[string, string, string], { seq: number }>('SELECT seq FROM messages WHERE uaid = ? AND chid = ? AND topic = ?'),
      deleteTopic: db.prepare('DELETE FROM messages WHERE uaid = ? AND chid = ? AND topic = ?'),
      // A topic message replaces its topic's pending message only when that one is not newer (Store.saveMessage).
      deleteOlderTopic: db.prepare('DELETE FROM messages WHERE uaid = ? AND chid = ? AND topic = ? AND seq <= ?'),
      fetch: db.prepare<[string, number, number, number], MessageRow>('SELECT * FROM messages WHERE uaid = ? AND seq > ? AND expiry > ? ORDER BY seq LIMIT ?'),
      count: db.prepare<[string, number, number], { n: number }>('SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE uaid = ? AND expiry > ? LIMIT ?)'),
      // By version, at its seq or up to MAX_SEQ_SHIFT past it (where a save moved it): another message holding the
      // seq is left alone.
      deleteMessage: db.prepare('DELETE FROM messages WHERE uaid = ? AND seq >= ? AND seq < ? AND version = ?'),
      sweep: db.prepare('DELETE FROM messages WHERE expiry <= ?'),
      ping: db.prepare('SELECT 1'),
      regByDevice: db.prepare<[string, string], { node: string }>('SELECT node FROM push_registrations WHERE account = ? AND device_id = ?'),
      regUpsert: db.prepare(
        'INSERT INTO push_registrations (node, account, device_id, doc) VALUES (?, ?, ?, ?) ON CONFLICT (node) DO UPDATE SET doc = excluded.doc',
      ),
      regGet: db.prepare<[string], { doc: string }>('SELECT doc FROM push_registrations WHERE node = ?'),
      regDelete: db.prepare('DELETE FROM push_registrations WHERE node = ?'),
      dashKeyAdd: db.prepare('INSERT INTO dashboard_keys (key_hash, created_at) VALUES (?, ?) ON CONFLICT (key_hash) DO NOTHING'),
      dashKeyDelete: db.prepare('DELETE FROM dashboard_keys WHERE key_hash = ?'),
      dashKeyRecordsDelete: db.prepare('DELETE FROM dashboard_records WHERE key_hash = ?'),
      dashKeys: db.prepare<[], { key_hash: string }>('SELECT key_hash FROM dashboard_keys'),
      dashSave: db.prepare(
        `INSERT INTO dashboard_records (key_hash, ref, received_at, outcome, doc) SELECT @key_hash, @ref, @received_at, @outcome, @doc
         WHERE EXISTS (SELECT 1 FROM dashboard_keys WHERE key_hash = @key_hash)
         ON CONFLICT (key_hash, ref) DO UPDATE SET outcome = excluded.outcome, doc = excluded.doc`,
      ),
      // The key's records are at most PUSHGATE_DASHBOARD_MAX_MESSAGES (the primary key's prefix finds them).
      dashMark: db.prepare(
        `UPDATE dashboard_records SET outcome = @outcome, doc = json_set(doc, '$.outcome', @outcome, '$.deliveredAt', @delivered_at)
         WHERE (@key_hash IS NULL OR key_hash = @key_hash) AND outcome IN (SELECT value FROM json_each(@from))
           AND (json_extract(doc, '$.id') = @id OR (@id IS NULL AND json_extract(doc, '$.subscription') = @subscription
             AND json_extract(doc, '$.topic') = @topic AND received_at < @before AND received_at + json_extract(doc, '$.ttl') * 1000 > @before))`,
      ),
      dashPruneOld: db.prepare('DELETE FROM dashboard_records WHERE key_hash = ? AND received_at < ?'),
      dashPruneOver: db.prepare(
        'DELETE FROM dashboard_records WHERE key_hash = ? AND ref < (SELECT ref FROM dashboard_records WHERE key_hash = ? ORDER BY ref DESC LIMIT 1 OFFSET ?)',
      ),
    };
    this.txBatch = db.transaction((batch: typeof this.pending) => {
      const outcomes: { ok: boolean; value: unknown }[] = [];
      for (const op of batch) {
        // A failing statement rolls back alone (SQLite statement journal); the others still commit.
        try {
          outcomes.push({ ok: true, value: op.run() });
        } catch (err) {
          outcomes.push({ ok: false, value: err });
        }
      }
      return outcomes;
    });
    this.txSaveReg = db.transaction((reg: PushRegistration): PushRegistration => {
      const existing = this.stmt.regByDevice.get(reg.account, reg.deviceId);
      const saved = existing ? { ...reg, node: existing.node } : reg;
      this.stmt.regUpsert.run(saved.node, saved.account, saved.deviceId, JSON.stringify(saved));
      return saved;
    });
    // A topic message's delete and insert go together or not at all (a savepoint in the group commit's transaction).
    this.txSaveTopic = db.transaction((row: MessageArgs) => this.saveRow(row));
    this.txRemoveUser = db.transaction((uaid: string) => {
      this.stmt.deleteUserMessages.run(uaid);
      this.stmt.deleteUserChannels.run(uaid);
      this.stmt.deleteUser.run(uaid);
    });
    this.txRemoveChannel = db.transaction((uaid: string, chid: string) => {
      this.stmt.deleteChannelMessages.run(uaid, chid);
      return this.stmt.deleteChannel.run(uaid, chid).changes > 0;
    });
  }

  /** Queues a write for the group commit at the end of this turn of the event loop. */
  private write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    let outcomes;
    try {
      outcomes = this.txBatch(batch);
    } catch (err) {
      for (const op of batch) op.reject(err);
      return;
    }
    outcomes.forEach((o, i) => (o.ok ? batch[i]!.resolve(o.value) : batch[i]!.reject(o.value)));
  }

  private userRow(user: UserRecord): UserRow {
    return {
      uaid: user.uaid,
      router_type: user.routerType,
      router_data: user.routerData ? JSON.stringify(user.routerData) : null,
      connected_at: user.connectedAt,
      node_id: user.peerId,
    };
  }

  async addUser(user: UserRecord): Promise<boolean> {
    const row = this.userRow(user);
    return this.write(() => this.stmt.insertUser.run(row).changes > 0);
  }

  async getUser(uaid: string): Promise<UserRecord | null> {
    const row = this.stmt.getUser.get(uaid);
    return row ? toUser(row) : null;
  }

  async updateUser(user: UserRecord): Promise<boolean> {
    const row = this.userRow(user);
    return this.write(() => this.stmt.updateUser.run(row).changes > 0);
  }

  async clearNodeId(uaid: string, connectedAt: number, peerId: string): Promise<boolean> {
    return this.write(() => this.stmt.clearNode.run(uaid, connectedAt, peerId).changes > 0);
  }

  async removeUser(uaid: string): Promise<void> {
    return this.write(() => this.txRemoveUser(uaid));
  }

  async addChannel(uaid: string, channel: ChannelRecord): Promise<void> {
    await this.write(() => this.stmt.insertChannel.run(uaid, channel.channelID, channel.keyHash));
  }

  async getChannel(uaid: string, channelID: string): Promise<ChannelRecord | null> {
    const row = this.stmt.getChannel.get(uaid, channelID);
    return row ? { channelID: row.chid, keyHash: row.key_hash } : null;
  }

  async getChannels(uaid: string): Promise<ChannelRecord[]> {
    return this.stmt.getChannels.all(uaid).map((row) => ({ channelID: row.chid, keyHash: row.key_hash }));
  }

  async removeChannel(uaid: string, channelID: string): Promise<boolean> {
    return this.write(() => this.txRemoveChannel(uaid, channelID));
  }

  async saveMessage(m: Notification): Promise<void> {
    // Positional parameters, in the INSERT's column order: binding them costs less than named ones on the hot path.
    const row: MessageArgs = [
      m.uaid,
      m.seq,
      m.channelID,
      m.version,
      m.ttl,
      m.expiry,
      m.topic,
      m.urgency,
      m.data,
      m.headers ? JSON.stringify(m.headers) : null,
      m.timestamp,
      m.dashboardKey ?? null,
    ];
    await this.write(() => (m.topic !== null ? this.txSaveTopic(row) : this.saveRow(row)));
  }

  /**
   * One message's save (Store.saveMessage), inside the group commit's transaction. Without a topic it changes one row
   * or none, so it needs no savepoint of its own.
   */
  private saveRow(row: MessageArgs): void {
    const [uaid, seq, chid, version, , , topic] = row;
    // Saved before, here or moved past a seq another message held: one copy.
    if (this.stmt.findMessage.get(uaid, seq, seq + MAX_SEQ_SHIFT, version)) return;
    if (topic !== null) this.stmt.deleteOlderTopic.run(uaid, chid, topic, seq);
    for (let attempt = 0; attempt < MAX_SEQ_SHIFT; attempt++) {
      if (this.stmt.insertMessage.run(...row).changes > 0) return;
      // Its topic is held by a newer message (what is left after deleteOlderTopic): nothing to save.
      if (topic !== null && this.stmt.topicHeld.get(uaid, chid, topic)) return;
      // Another message holds (uaid, seq): two processes stamped the same key (Store.saveMessage).
      row[1] += 1;
    }
    throw new Error(`no free seq within ${MAX_SEQ_SHIFT} of ${seq}`);
  }

  async fetchMessages(uaid: string, afterSeq: number, limit: number, now: number): Promise<Notification[]> {
    return this.stmt.fetch.all(uaid, afterSeq, now, limit).map(toMessage);
  }

  async countMessages(uaid: string, cap: number): Promise<number> {
    return this.stmt.count.get(uaid, Date.now(), cap)?.n ?? 0;
  }

  async removeMessage(uaid: string, seq: number, version: string): Promise<boolean> {
    return this.write(() => this.stmt.deleteMessage.run(uaid, seq, seq + MAX_SEQ_SHIFT, version).changes > 0);
  }

  async removeTopicMessage(uaid: string, channelID: string, topic: string): Promise<boolean> {
    return this.write(() => this.stmt.deleteTopic.run(uaid, channelID, topic).changes > 0);
  }

  async sweepExpired(now: number): Promise<number> {
    return this.write(() => this.stmt.sweep.run(now).changes);
  }

  async savePushRegistration(reg: PushRegistration): Promise<PushRegistration> {
    return this.write(() => this.txSaveReg(reg));
  }

  async getPushRegistration(node: string): Promise<PushRegistration | null> {
    const row = this.stmt.regGet.get(node);
    return row ? (JSON.parse(row.doc) as PushRegistration) : null;
  }

  async removePushRegistration(node: string): Promise<boolean> {
    return this.write(() => this.stmt.regDelete.run(node).changes > 0);
  }

  async health(): Promise<void> {
    this.stmt.ping.get();
  }

  /**
   * WAL mode, which the file keeps. A new file is switched in a write transaction; when another connection holds the
   * file's write lock (a second process switching it or creating the schema at the same moment), SQLite answers
   * SQLITE_BUSY at once instead of waiting behind the busy timeout, since this connection already holds a read
   * lock and waiting could deadlock. So it tries again every 10 ms, up to the busy timeout. Only at open, so the
   * pause may block.
   */
  private switchToWal(): void {
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (;;) {
      try {
        this.db.pragma('journal_mode = WAL');
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
        Atomics.wait(PAUSE, 0, 0, 10);
      }
    }
  }

  async close(): Promise<void> {
    this.flush();
    if (this.db.open) this.db.close();
  }

  // XMPP registrations by device and per-account caps (issue 9 item 5, issue 12).
  async findPushRegistration(account: string, deviceId: string): Promise<PushRegistration | null> {
    const row = this.db
      .prepare<[string, string], { doc: string }>('SELECT doc FROM push_registrations WHERE account = ? AND device_id = ?')
      .get(account, deviceId);
    return row ? (JSON.parse(row.doc) as PushRegistration) : null;
  }

  async countPushRegistrations(account: string, cap: number): Promise<number> {
    const row = this.db
      .prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM (SELECT 1 FROM push_registrations WHERE account = ? LIMIT ?)')
      .get(account, cap);
    return row?.n ?? 0;
  }

  // Megaphone broadcasts: a table of its own, created on first use.
  private broadcastStmt: {
    upsert: Database.Statement<[string, string]>;
    exists: Database.Statement<[string]>;
    all: Database.Statement<[], { id: string; version: string }>;
  } | null = null;

  private broadcasts() {
    if (!this.broadcastStmt) {
      this.db.exec('CREATE TABLE IF NOT EXISTS broadcasts (id TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID');
      this.broadcastStmt = {
        upsert: this.db.prepare('INSERT INTO broadcasts (id, version) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version'),
        exists: this.db.prepare('SELECT 1 FROM broadcasts WHERE id = ?'),
        all: this.db.prepare('SELECT id, version FROM broadcasts'),
      };
    }
    return this.broadcastStmt;
  }

  async putBroadcast(id: string, version: string): Promise<boolean> {
    const stmt = this.broadcasts();
    return this.write(() => {
      const created = stmt.exists.get(id) === undefined;
      stmt.upsert.run(id, version);
      return created;
    });
  }

  async getBroadcasts(): Promise<Record<string, string>> {
    return Object.fromEntries(
      this.broadcasts()
        .all.all()
        .map((r) => [r.id, r.version]),
    );
  }

  // --- websocket door: bounded channel loading (issue 9 item 7) ---
  async getChannelsPage(uaid: string, afterChannelID: string, limit: number): Promise<ChannelRecord[]> {
    return this.stmt.getChannelsPage.all(uaid, afterChannelID, limit).map((row) => ({ channelID: row.chid, keyHash: row.key_hash }));
  }

  // Developer dashboard (src/dashboard)
  async addDashboardKey(keyHash: string, now: number): Promise<void> {
    await this.write(() => this.stmt.dashKeyAdd.run(keyHash, now));
  }

  async removeDashboardKey(keyHash: string): Promise<boolean> {
    return this.write(() => {
      this.stmt.dashKeyRecordsDelete.run(keyHash);
      return this.stmt.dashKeyDelete.run(keyHash).changes > 0;
    });
  }

  async listDashboardKeys(): Promise<string[]> {
    return this.stmt.dashKeys.all().map((r) => r.key_hash);
  }

  async saveDashboardRecords(records: DashboardRecord[]): Promise<void> {
    const rows = records.map((r) => ({ key_hash: r.keyHash, ref: r.ref, received_at: r.receivedAt, outcome: r.outcome, doc: JSON.stringify(r) }));
    await this.write(() => {
      for (const row of rows) this.stmt.dashSave.run(row);
    });
  }

  async listDashboardRecords(keyHash: string, q: DashboardQuery): Promise<DashboardRecord[]> {
    // Few enough shapes that building the statement is cheaper to read than one per combination.
    let sql = 'SELECT doc FROM dashboard_records WHERE key_hash = ?';
    const args: (string | number)[] = [keyHash];
    const where = (clause: string, value: string | number | undefined): void => {
      if (value === undefined) return;
      sql += clause;
      args.push(value);
    };
    where(' AND ref < ?', q.before);
    where(' AND outcome = ?', q.outcome);
    where(' AND received_at >= ?', q.since);
    where(' AND received_at <= ?', q.until);
    sql += ' ORDER BY ref DESC LIMIT ?';
    args.push(q.limit);
    return this.db
      .prepare<(string | number)[], { doc: string }>(sql)
      .all(...args)
      .map((r) => JSON.parse(r.doc) as DashboardRecord);
  }

  async pruneDashboardRecords(keyHash: string, keep: number, since: number): Promise<number> {
    return this.write(() => this.stmt.dashPruneOld.run(keyHash, since).changes + this.stmt.dashPruneOver.run(keyHash, keyHash, keep - 1).changes);
  }
  // Developer dashboard, fleet events
  async markDashboardRecords(marks: DashboardMark[]): Promise<boolean[]> {
    return this.write(() =>
      marks.map(
        (m) =>
          this.stmt.dashMark.run({
            key_hash: m.keyHash,
            id: m.id,
            subscription: m.replaced?.subscription ?? null,
            topic: m.replaced?.topic ?? null,
            before: m.replaced?.before ?? null,
            from: JSON.stringify(m.from),
            outcome: m.outcome,
            delivered_at: m.deliveredAt,
          }).changes > 0,
      ),
    );
  }

  // Acked messages.
  async forgetMessage(m: Pick<Notification, 'uaid' | 'seq' | 'version' | 'channelID' | 'topic'>): Promise<void> {
    // By version: a topic message replaced meanwhile, or another message at the seq, is left alone.
    await this.write(() => this.stmt.deleteMessage.run(m.uaid, m.seq, m.seq + MAX_SEQ_SHIFT, m.version));
  }
}

classifyStoreErrors(SqliteStore.prototype, sqliteUnavailable, 'SQLite');

/**
 * Creates the database file owner-only (0600) before SQLite opens it, in an owner-only (0700) directory when
 * it creates one (issue 9 §14). SQLite gives its -wal and -shm files the database file's permissions.
 */
function createPrivate(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    // Another process made it first: fine, it is tightened below like any existing file.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // An existing file made by an older version (0644 under the usual umask) is tightened too.
  chmodSync(path, 0o600);
}
