import { type SettingsTable, int, optionalPath } from '../util/settings.js';

/** The FCM, APNs and ADM apps, and the bounds every bridge keeps. */
export const bridgeSettings = {
  bridges: { env: 'PUSHGATE_BRIDGES', key: 'bridges', help: 'JSON file of FCM, APNs and ADM apps (see README)', expect: 'a readable JSON file', parse: optionalPath, default: null as string | null },
  bridgeTimeout: { env: 'PUSHGATE_BRIDGE_TIMEOUT', key: 'bridgeTimeout', help: 'seconds a request to FCM, APNs or ADM may take before it counts as a timeout (errno 903)', expect: 'an integer from 1 to 120', parse: int(1, 120), default: 10 },
  bridgeQueue: { env: 'PUSHGATE_BRIDGE_QUEUE', key: 'bridgeQueue', help: 'sends per app in flight plus waiting; beyond it senders get 503 with Retry-After at once', expect: 'an integer from 1 to 1000000', parse: int(1, 1_000_000), default: 1024 },
  bridgeMaxChannels: { env: 'PUSHGATE_BRIDGE_MAX_CHANNELS', key: 'bridgeMaxChannels', help: 'channels (subscriptions) one bridge registration (uaid) may hold', expect: 'an integer from 1 to 1000000', parse: int(1, 1_000_000), default: 1000 },
} satisfies SettingsTable;
