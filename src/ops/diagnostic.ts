import type { Store } from '../store/index.js';
import { type ApiVersion, parseEndpointToken } from '../webpush/protocol/endpoint-token.js';
import type { MultiFernet } from '../webpush/protocol/fernet.js';

/**
 * `pushgate endpoint-diagnostic`: what an endpoint URL names and what the store knows of it, as autopush's
 * tool of that name prints it. Reads only; prints no secret (the key hash is shown, never a key).
 */
export async function endpointDiagnostic(endpoint: string, fernet: MultiFernet, store: Store): Promise<Record<string, unknown>> {
  let path: string;
  try {
    path = new URL(endpoint).pathname;
  } catch {
    path = endpoint;
  }
  const m = /^\/wpush\/(?:(v1|v2)\/)?([^/]+)$/.exec(path);
  if (!m) return { endpoint, valid: false, reason: 'not a /wpush/[v1|v2/]{token} URL' };
  const version = (m[1] ?? 'v1') as ApiVersion;
  const info = parseEndpointToken(fernet, m[2]!, version);
  if (!info) return { endpoint, valid: false, reason: `the token does not decrypt as a ${version} token with the configured keys` };
  const [user, channel, pending] = await Promise.all([
    store.getUser(info.uaid),
    store.getChannel(info.uaid, info.channelID),
    store.countMessages(info.uaid, 1_000_000),
  ]);
  return {
    endpoint,
    valid: true,
    apiVersion: version,
    uaid: info.uaid,
    channelID: info.channelID,
    vapidKeyHash: info.keyHash?.toString('hex') ?? null,
    user: user
      ? {
          routerType: user.routerType,
          connectedAt: new Date(user.connectedAt).toISOString(),
          peerId: user.peerId,
          routerData: user.routerData ? Object.keys(user.routerData) : null,
        }
      : null,
    channel: channel
      ? { registered: true, boundToVapidKey: channel.keyHash !== null, keyMatchesToken: info.keyHash ? (channel.keyHash?.equals(info.keyHash) ?? false) : null }
      : { registered: false },
    pendingMessages: pending,
    verdict: !user ? 'gone: the uaid is unknown (senders get 410 errno 103)' : !channel ? 'gone: the channel is unregistered (410 errno 106)' : 'live',
  };
}
