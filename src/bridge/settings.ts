import { type SettingsTable, optionalPath } from '../util/settings.js';

/** The FCM, APNs and ADM apps. */
export const bridgeSettings = {
  bridges: { env: 'PUSHGATE_BRIDGES', key: 'bridges', help: 'JSON file of FCM, APNs and ADM apps (see README)', expect: 'a readable JSON file', parse: optionalPath, default: null as string | null },
} satisfies SettingsTable;
