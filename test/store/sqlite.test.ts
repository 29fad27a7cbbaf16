import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from './contract.js';

storeContract('SQLite in memory', async () => new SqliteStore(':memory:'));
storeContract('SQLite file (WAL)', async () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'pushgate-store-')), 'db.sqlite')));

/**
 * Another process holding the file while this one opens it (workers starting at once, a second process on one
 * machine): played by a worker thread with its own connection, so this thread's synchronous open can wait for it.
 * The thread runs `steps`, reports `holding`, and after `holdMs` commits and reports `released`.
 */
async function heldBy(path: string, steps: string, holdMs: number): Promise<{ released: Promise<void> }> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const db = new (require('better-sqlite3'))(workerData.path);
     db.exec(workerData.steps);
     parentPort.postMessage('holding');
     setTimeout(() => { db.exec('COMMIT'); db.close(); parentPort.postMessage('released'); }, workerData.holdMs);`,
    { eval: true, workerData: { path, steps, holdMs } },
  );
  const messages: string[] = [];
  const waiters = new Map<string, () => void>();
  worker.on('message', (m: string) => {
    messages.push(m);
    waiters.get(m)?.();
  });
  const when = (m: string) => new Promise<void>((resolve) => (messages.includes(m) ? resolve() : waiters.set(m, resolve)));
  await when('holding');
  return { released: when('released').then(() => worker.terminate().then(() => undefined)) };
}

describe('opening a file another process holds', () => {
  it('switches a new file to WAL once the other process lets go, where SQLite answers "database is locked" at once', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pushgate-store-')), 'db.sqlite');
    // A new file in rollback mode, with a write transaction open (its reserved lock).
    const other = await heldBy(path, 'CREATE TABLE t (x); BEGIN IMMEDIATE;', 300);
    const store = new SqliteStore(path);
    await other.released;
    await store.health();
    await store.close();
    expect(new Database(path).pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('adds a missing column once when another process is adding it at the same time', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pushgate-store-')), 'db.sqlite');
    // A database from before the column, in WAL mode; the other process adds the column in a write transaction.
    await new SqliteStore(path).close();
    const old = new Database(path);
    old.exec('ALTER TABLE messages DROP COLUMN dashboard_key');
    old.close();
    const other = await heldBy(path, 'BEGIN IMMEDIATE; ALTER TABLE messages ADD COLUMN dashboard_key TEXT;', 300);
    const store = new SqliteStore(path);
    await other.released;
    await store.close();
    const columns = (new Database(path).pragma('table_info(messages)') as { name: string }[]).filter((c) => c.name === 'dashboard_key');
    expect(columns).toHaveLength(1);
  });
});
