/**
 * Durability settings and error classification of the backends (issue 9 §12, §14; issue 10 §3): what a 201
 * rests on (SQLite synchronous=NORMAL by default or FULL, MongoDB w:majority bounded by wtimeoutMS), owner-only files, removal order,
 * and which failures are an outage (StoreUnavailableError) rather than a bug.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoNetworkError, MongoServerError } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore, WRITE_TIMEOUT_MS } from '../../src/store/mongodb.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { StoreUnavailableError } from '../../src/store/types.js';
import { mongoUnavailable, sqliteUnavailable } from '../../src/store/unavailable.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';

const uaid = 'ab'.repeat(16);
const user = { uaid, routerType: 'webpush', routerData: null, connectedAt: 1, peerId: null };

describe('SQLite durability and permissions', () => {
  const pragmaOf = (store: SqliteStore, name: string) =>
    (store as unknown as { db: { pragma(p: string, o: { simple: true }): unknown } }).db.pragma(name, { simple: true });

  it('commits with synchronous=NORMAL by default and FULL when asked (PUSHGATE_SQLITE_SYNCHRONOUS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-sync-'));
    const normal = new SqliteStore(join(dir, 'normal.sqlite'));
    const full = new SqliteStore(join(dir, 'full.sqlite'), { synchronous: 'full' });
    try {
      expect(pragmaOf(normal, 'synchronous')).toBe(1); // 1 = NORMAL
      expect(pragmaOf(full, 'synchronous')).toBe(2); // 2 = FULL
    } finally {
      await normal.close();
      await full.close();
    }
  });

  it('commits in WAL mode, in owner-only files and directory', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pushgate-dur-')), 'new-dir');
    const path = join(dir, 'db.sqlite');
    const store = new SqliteStore(path);
    try {
      const db = (store as unknown as { db: { pragma(p: string, o: { simple: true }): unknown } }).db;
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      await store.addUser(user);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    } finally {
      await store.close();
    }
  });

  it('turns a closed or failing database into StoreUnavailableError and leaves bugs as they are', async () => {
    const store = new SqliteStore(':memory:');
    // A value SQLite cannot bind is a bug in the caller: it must not look like an outage.
    await expect(store.addChannel(uaid, { channelID: {} as unknown as string, keyHash: null })).rejects.not.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    await expect(store.getUser(uaid)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(sqliteUnavailable(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))).toBe(true);
    expect(sqliteUnavailable(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }))).toBe(true);
    expect(sqliteUnavailable(Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }))).toBe(false);
  });
});

describe('MongoDB durability and removal order', () => {
  let server: MongoServer;
  beforeAll(async () => {
    server = await mongoServer();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('writes with w: majority bounded by wtimeoutMS (the server accepts it)', async () => {
    const store = await MongoStore.connect(server.url('durability'));
    try {
      const client = (store as unknown as { client: { writeConcern?: { w?: unknown; wtimeoutMS?: number; wtimeout?: number } } }).client;
      expect(client.writeConcern?.w).toBe('majority');
      expect(client.writeConcern?.wtimeoutMS ?? client.writeConcern?.wtimeout).toBe(WRITE_TIMEOUT_MS);
      expect(await store.addUser(user)).toBe(true);
      expect(await store.getUser(uaid)).toMatchObject({ uaid });
    } finally {
      await store.close();
    }
  });

  it('removes messages, then channels, then the user record (a crash in between orphans nothing)', async () => {
    const store = await MongoStore.connect(server.url('durability-order'));
    try {
      const order: string[] = [];
      const s = store as unknown as Record<'users' | 'channels' | 'messages', Record<string, (...a: unknown[]) => Promise<unknown>>>;
      for (const coll of ['users', 'channels', 'messages'] as const) {
        for (const op of ['deleteOne', 'deleteMany']) {
          const original = s[coll][op]!.bind(s[coll]);
          s[coll][op] = (...a: unknown[]) => {
            order.push(coll);
            return original(...a);
          };
        }
      }
      await store.removeUser(uaid);
      expect(order).toEqual(['messages', 'channels', 'users']);
      order.length = 0;
      await store.removeChannel(uaid, 'c');
      expect(order).toEqual(['messages', 'channels']);
    } finally {
      await store.close();
    }
  });

  it('classifies network failures and elections as unavailable, other server errors as bugs', () => {
    expect(mongoUnavailable(new MongoNetworkError('connection reset'))).toBe(true);
    expect(mongoUnavailable(new MongoServerError({ message: 'not primary', code: 10107 }))).toBe(true);
    expect(mongoUnavailable(new MongoServerError({ message: 'waiting for replication timed out', code: 64 }))).toBe(true);
    expect(mongoUnavailable(new MongoServerError({ message: 'bad query', code: 2 }))).toBe(false);
    expect(mongoUnavailable(new TypeError('x is undefined'))).toBe(false);
  });
});
