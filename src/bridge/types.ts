/**
 * The one interface every bridge (FCM, APNs, ADM) implements, and the message and outcome shapes the doors
 * (Web Push endpoints, the MongoosePush API, the XMPP component) hand to it.
 */

export const ROUTER_TYPES = ['fcm', 'apns', 'adm'] as const;
export type RouterType = (typeof ROUTER_TYPES)[number];

/** A visible notification (APNs alert, FCM notification). */
export interface BridgeAlert {
  title?: string;
  body?: string;
  sound?: string;
  badge?: number;
  clickAction?: string;
  tag?: string;
}

/** A message for one device, in provider-neutral terms. */
export interface BridgeMessage {
  token: string;
  /** String key/values delivered to the app (FCM data, ADM data, APNs custom keys). */
  data: Record<string, string>;
  alert?: BridgeAlert;
  /** Seconds the provider may keep the message (RFC 8030 TTL). */
  ttl: number;
  /** high: wake the device now (RFC 8030 Urgency high/normal); normal: when convenient. */
  priority: 'high' | 'normal';
  /** A newer message with the same key replaces an undelivered one (RFC 8030 Topic). */
  collapseKey: string | null;
  /** APNs: let a notification service extension rewrite it. */
  mutableContent?: boolean;
  /** APNs: a background (content-available) push instead of an alert. */
  background?: boolean;
  /** APNs: an `aps` dictionary given at registration (autopush's `aps`), replacing the default. */
  aps?: Record<string, unknown>;
  /** APNs: an apns-topic other than the app's bundle id (MongoosePush `topic`). */
  apnsTopic?: string;
  /** APNs: custom keys with their JSON types (MongoosePush's `data`), sent instead of `data`'s strings. */
  apnsData?: Record<string, unknown>;
}

/**
 * How a send ended, classified so every door answers the same way. `code` is the provider's own name for a
 * refusal (FCM `errorCode`, APNs `reason`, ADM `reason`) when it gave one: the MongoosePush API reports it.
 */
export type BridgeResult =
  | { outcome: 'delivered'; newToken?: string }
  /** The provider says the token is dead: drop the registration. */
  | { outcome: 'dead-token'; reason: string; code?: string }
  /** Transient: rate limited (429) or unavailable (503), or our own queue for the app is full; try again after retryAfter seconds. */
  | { outcome: 'retry-later'; reason: string; status: 429 | 503; retryAfter: number | null; code?: string }
  /** Our side is wrong: the configuration (errno 900) or credentials the provider refuses (errno 901). */
  | { outcome: 'misconfigured'; reason: string; errno: 900 | 901; code?: string }
  /** The provider could not be reached: connection refused, reset, TLS failure (autopush errno 902). */
  | { outcome: 'unreachable'; reason: string }
  /** The provider did not answer within the request timeout (autopush errno 903). */
  | { outcome: 'timeout'; reason: string }
  /** The provider refused this message (too large, invalid); sending it again will not help. */
  | { outcome: 'rejected'; reason: string; tooLarge: boolean; code?: string };

/** Outcomes worth another attempt: the provider may answer differently in a moment. */
export function isTransient(result: BridgeResult): boolean {
  return result.outcome === 'retry-later' || result.outcome === 'unreachable' || result.outcome === 'timeout';
}

export interface Bridge {
  readonly type: RouterType;
  readonly appId: string;
  /** Whether a device token has the provider's shape (checked at registration). */
  validateToken(token: string): boolean;
  send(message: BridgeMessage): Promise<BridgeResult>;
  close(): Promise<void>;
}

/** Thrown at start-up for an unusable bridges file or credentials: the message names the app and the fault. */
export class BridgeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BridgeConfigError';
  }
}

/** Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined | null): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  const text = v.trim();
  if (/^\d+$/.test(text)) return Number(text);
  // The three HTTP-date forms (IMF-fixdate, RFC 850, asctime; RFC 9110 §5.6.7) all open with a day name. Without this
  // check Date.parse would read '-5' or '2' as years and turn them into advice.
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)/.test(text)) return null;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
