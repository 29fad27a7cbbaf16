import { type SettingsTable } from '../util/settings.js';
import { isStoreUrl } from './index.js';

/** Where state lives. */
export const storeSettings = {
  store: { env: 'PUSHGATE_STORE', key: 'store', help: 'storage: sqlite:<path>, sqlite::memory: or mongodb://host/db', expect: 'sqlite:<path>, sqlite::memory: or a mongodb:// URL', parse: (r: string) => (isStoreUrl(r) ? r : undefined), default: 'sqlite:./data/pushgate.db' },
  sqliteSynchronous: {
    env: 'PUSHGATE_SQLITE_SYNCHRONOUS',
    key: 'sqliteSynchronous',
    help: 'SQLite commits: normal (a 201 survives a process crash; a power loss may undo the last commits) or full (an fsync per group commit: survives a power loss, at a measured cost; see README Security)',
    expect: 'normal or full',
    parse: (r: string) => (r === 'normal' || r === 'full' ? r : undefined),
    default: 'normal' as const,
  },
} satisfies SettingsTable;
