import type { BridgeMessage, BridgeResult } from '../../bridge/index.js';
import type { Notification } from '../../store/index.js';
import { ApiError } from '../protocol/errors.js';

/**
 * Web Push messages for bridged (mobile) subscriptions, in autopush's shape so that clients built for
 * autopush's bridges (Firefox for Android and iOS) work unchanged: data `{chid, body, con, enc, cryptokey}`.
 */

/** autopush's FCM router sends at least 60 s and at most 28 days. */
const FCM_MIN_TTL = 60;
const FCM_MAX_TTL = 28 * 24 * 60 * 60;

export function bridgedMessage(routerType: string, n: Notification, routerData: Record<string, unknown>): BridgeMessage {
  const data: Record<string, string> = { chid: n.channelID };
  if (n.data !== null) {
    data['body'] = n.data;
    const h = n.headers ?? {};
    if (h['encoding']) data['con'] = h['encoding'];
    if (h['encryption']) data['enc'] = h['encryption'];
    if (h['crypto_key']) data['cryptokey'] = h['crypto_key'];
  }
  const ttl = routerType === 'fcm' ? Math.min(FCM_MAX_TTL, Math.max(FCM_MIN_TTL, n.ttl)) : n.ttl;
  const msg: BridgeMessage = {
    token: String(routerData['token']),
    data,
    ttl,
    // RFC 8030 §5.3: only high urgency wakes a device at once.
    priority: n.urgency === 'high' ? 'high' : 'normal',
    collapseKey: n.topic,
  };
  if (routerType === 'apns') {
    msg.mutableContent = true;
    if (typeof routerData['aps'] === 'object' && routerData['aps'] !== null) msg.aps = routerData['aps'] as Record<string, unknown>;
    else msg.alert = { title: ' ', body: ' ' };
    data['ver'] = n.version;
  }
  return msg;
}

/** A bridge outcome other than delivery, as the sender sees it: never 404/410 for anything transient. */
export function bridgeError(result: Exclude<BridgeResult, { outcome: 'delivered' }>): ApiError {
  switch (result.outcome) {
    case 'dead-token':
      return new ApiError('unavailableEndpoint', 'The device is no longer registered with its push provider');
    case 'retry-later':
      return result.status === 429
        ? new ApiError('rateLimited', 'The push provider is rate limiting', result.retryAfter ?? 60)
        : new ApiError('backOff', 'The push provider is temporarily unavailable', result.retryAfter ?? undefined);
    case 'misconfigured':
      return new ApiError(result.errno === 900 ? 'bridgeMisconfigured' : 'bridgeAuth', 'The push provider could not be used');
    case 'unreachable':
      return new ApiError('bridgeConnect', 'The push provider could not be reached');
    case 'timeout':
      return new ApiError('bridgeTimeout', 'The push provider did not answer in time');
    case 'rejected':
      return result.tooLarge
        ? new ApiError('payloadTooLarge', 'The message is larger than the push provider accepts')
        : new ApiError('bridgeMisconfigured', 'The push provider refused the message');
  }
}
