import { type SettingsTable, int } from '../../util/settings.js';
import { splitKeyList } from '../protocol/fernet.js';

/** The push endpoint and the bridge registration API. */
export const endpointSettings = {
  vapidClockSkew: { env: 'PUSHGATE_VAPID_CLOCK_SKEW', key: 'vapidClockSkew', help: "seconds of clock difference tolerated on a VAPID token's exp", expect: 'an integer from 0 to 3600', parse: int(0, 3600), default: 60 },
  authKeys: { env: 'PUSHGATE_AUTH_KEYS', secret: true, key: 'authKeys', help: "comma-separated keys (or autopush's bracketed [k1,k2]) that sign bridge registration secrets: the first signs, all verify", expect: 'comma-separated keys of at least 16 characters', parse: (r: string) => (splitKeyList(r).length > 0 && splitKeyList(r).every((k) => k.length >= 16) ? r : undefined), default: '' },
  maxDataBytes: { env: 'PUSHGATE_MAX_DATA_BYTES', key: 'maxDataBytes', help: 'largest push body accepted, in bytes (autopush max_data_bytes); larger gets 413 errno 104', expect: 'an integer from 4096 to 65536', parse: int(4096, 65536), default: 5630 },
} satisfies SettingsTable;
