import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { ChannelRecord, DashboardMark, DashboardQuery, DashboardRecord, Notification, PushRegistration, Store, Urgency, UserRecord } from './types.js';
export { StoreUnavailableError, URGENCIES } from './types.js';

/** Whether a PUSHGATE_STORE value names a backend this build has. */
export function isStoreUrl(url: string): boolean {
  return /^sqlite:.+/.test(url) || /^mongodb(\+srv)?:\/\/.+/.test(url);
}

/** The URL with any password hidden, for messages and logs. */
export function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export interface StoreOptions {
  /** SQLite's `synchronous` in WAL mode (PUSHGATE_SQLITE_SYNCHRONOUS). */
  sqliteSynchronous?: 'normal' | 'full';
}

/** Opens the backend a PUSHGATE_STORE value names: `sqlite:<path>`, `sqlite::memory:` or `mongodb://…/<db>`. */
export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return new SqliteStore(path === ':memory:' ? ':memory:' : path, { synchronous: options.sqliteSynchronous ?? 'normal' });
  }
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) {
    // Loaded only when used: a single node on SQLite never loads the driver.
    const { MongoStore } = await import('./mongodb.js');
    return MongoStore.connect(url);
  }
  throw new Error(`unsupported store URL ${redactStoreUrl(url)}`);
}
