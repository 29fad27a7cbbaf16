import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { ChannelRecord, Notification, Store, Urgency, UserRecord } from './types.js';
export { StoreUnavailableError, URGENCIES } from './types.js';

/** Whether a PUSHGATE_STORE value names a backend this build has. */
export function isStoreUrl(url: string): boolean {
  return /^sqlite:.+/.test(url);
}

/** Opens the backend a PUSHGATE_STORE value names: `sqlite:<path>` or `sqlite::memory:`. */
export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return new SqliteStore(path === ':memory:' ? ':memory:' : path);
  }
  throw new Error(`unsupported store URL scheme in ${url.replace(/\/\/[^@/]*@/, '//***@')}`);
}
