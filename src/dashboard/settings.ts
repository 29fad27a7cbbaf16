import { type SettingsTable, int } from '../util/settings.js';

/** The developer dashboard: how much message metadata is kept per opted-in VAPID key, and how writes are batched. */
export const dashboardSettings = {
  dashboardMaxMessages: { env: 'PUSHGATE_DASHBOARD_MAX_MESSAGES', key: 'dashboardMaxMessages', help: 'messages kept per opted-in dashboard key (the newest)', expect: 'an integer from 1 to 100000', parse: int(1, 100_000), default: 1000 },
  dashboardMaxHours: { env: 'PUSHGATE_DASHBOARD_MAX_HOURS', key: 'dashboardMaxHours', help: 'hours of message metadata kept per opted-in dashboard key', expect: 'an integer from 1 to 720', parse: int(1, 720), default: 72 },
  dashboardMaxKeys: { env: 'PUSHGATE_DASHBOARD_MAX_KEYS', key: 'dashboardMaxKeys', help: 'opted-in dashboard keys at most (keys are free to make: this bounds the storage)', expect: 'an integer from 1 to 10000000', parse: int(1, 10_000_000), default: 10_000 },
  dashboardFlushMs: { env: 'PUSHGATE_DASHBOARD_FLUSH_MS', key: 'dashboardFlushMs', help: 'milliseconds between dashboard write-behind flushes (and key-set refreshes: 10 flushes)', expect: 'an integer from 10 to 60000', parse: int(10, 60_000), default: 1000 },
} satisfies SettingsTable;
