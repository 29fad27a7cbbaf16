import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from './contract.js';

storeContract('SQLite in memory', async () => new SqliteStore(':memory:'));
storeContract('SQLite file (WAL)', async () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'pushgate-store-')), 'db.sqlite')));
