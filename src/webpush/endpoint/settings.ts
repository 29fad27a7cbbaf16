import { type SettingsTable, int } from '../../util/settings.js';

/** The push endpoint and the bridge registration API. */
export const endpointSettings = {
  vapidClockSkew: { env: 'PUSHGATE_VAPID_CLOCK_SKEW', key: 'vapidClockSkew', help: "seconds of clock difference tolerated on a VAPID token's exp", expect: 'an integer from 0 to 3600', parse: int(0, 3600), default: 60 },
  authKeys: { env: 'PUSHGATE_AUTH_KEYS', secret: true, key: 'authKeys', help: 'comma-separated keys that sign bridge registration secrets: the first signs, all verify', expect: 'comma-separated keys of at least 16 characters', parse: (r: string) => (r.split(',').every((k) => k.trim().length >= 16) ? r : undefined), default: '' },
} satisfies SettingsTable;
