/** Megaphone broadcasts: where versions come from (a Megaphone service, or Pushgate's own API) and how often they are read. */
import { type SettingsTable, int } from '../../util/settings.js';

const optionalHttpUrl = (raw: string): string | null | undefined => {
  if (raw.trim() === '') return null;
  try {
    const url = new URL(raw.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
};

export const broadcastSettings = {
  megaphoneUrl: { env: 'PUSHGATE_MEGAPHONE_URL', key: 'megaphoneUrl', help: "a Megaphone service's broadcasts URL (…/v1/broadcasts), polled as autoconnect polls it", expect: 'an http(s) URL, or empty', parse: optionalHttpUrl, default: null },
  megaphoneToken: { env: 'PUSHGATE_MEGAPHONE_TOKEN', secret: true, key: 'megaphoneToken', help: "Bearer token: sent to PUSHGATE_MEGAPHONE_URL, or, without a URL, required by Pushgate's own PUT/GET /v1/broadcasts", expect: 'a token of at least 16 characters, or empty', parse: (r: string) => (r.trim() === '' ? null : r.trim().length >= 16 ? r.trim() : undefined), default: null },
  megaphonePollInterval: { env: 'PUSHGATE_MEGAPHONE_POLL_INTERVAL', key: 'megaphonePollInterval', help: 'seconds between two reads of the broadcast versions (from Megaphone or the store)', expect: 'an integer from 1 to 3600', parse: int(1, 3600), default: 30 },
} satisfies SettingsTable;
