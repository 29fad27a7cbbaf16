import { type SettingsTable } from '../util/settings.js';
import { isStoreUrl } from './index.js';

/** Where state lives. */
export const storeSettings = {
  store: { env: 'PUSHGATE_STORE', key: 'store', help: 'storage: sqlite:<path>, sqlite::memory: or mongodb://host/db', expect: 'sqlite:<path>, sqlite::memory: or a mongodb:// URL', parse: (r: string) => (isStoreUrl(r) ? r : undefined), default: 'sqlite:./data/pushgate.db' },
} satisfies SettingsTable;
