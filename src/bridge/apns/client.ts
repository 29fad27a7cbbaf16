import apn from '@parse/node-apn';
import { type Bridge, type BridgeMessage, type BridgeResult } from '../types.js';

/**
 * APNs over HTTP/2 through @parse/node-apn (one multiplexed connection per app), with token (.p8) or
 * certificate authentication, production or sandbox. node-apn's own retries are turned off
 * (connectionRetryLimit 0) so that retries follow Pushgate's backoff policy in one place (reliable.ts).
 */

export interface ApnsSettings {
  appId: string;
  /** The app's bundle id: the apns-topic. */
  topic: string;
  sandbox: boolean;
  auth: { token: { key: Buffer; keyId: string; teamId: string } } | { cert: { cert: Buffer; key: Buffer } };
  /** Origin of the APNs server; Apple's production or sandbox host when absent. */
  baseUrl: string | null;
  ca: Buffer | null;
  timeoutMs: number;
}

/** APNs refuses payloads over 4096 bytes (alert and background pushes). */
export const APNS_MAX_PAYLOAD_BYTES = 4096;

export class ApnsBridge implements Bridge {
  readonly type = 'apns' as const;
  readonly appId: string;
  private readonly provider: apn.Provider;

  constructor(private readonly settings: ApnsSettings) {
    this.appId = settings.appId;
    const base = settings.baseUrl ? new URL(settings.baseUrl) : null;
    this.provider = new apn.Provider({
      ...('token' in settings.auth ? { token: settings.auth.token } : { cert: settings.auth.cert.cert, key: settings.auth.cert.key }),
      production: !settings.sandbox,
      ...(base ? { address: base.hostname, port: Number(base.port || 443) } : {}),
      ...(settings.ca ? { ca: [settings.ca] } : {}),
      connectionRetryLimit: 0,
      requestTimeout: settings.timeoutMs,
    });
  }

  validateToken(token: string): boolean {
    // Device tokens are hex; 32 bytes today, longer ones are documented as possible.
    return /^[0-9a-fA-F]{64,200}$/.test(token);
  }

  buildPayload(msg: BridgeMessage): Record<string, unknown> {
    let aps: Record<string, unknown>;
    if (msg.aps) aps = { ...msg.aps };
    else if (msg.background) aps = { 'content-available': 1 };
    else {
      const alert = msg.alert ?? {};
      aps = { alert: { ...(alert.title !== undefined ? { title: alert.title } : {}), ...(alert.body !== undefined ? { body: alert.body } : {}) } };
      if (alert.sound) aps['sound'] = alert.sound;
      if (alert.badge !== undefined) aps['badge'] = alert.badge;
      if (alert.clickAction) aps['category'] = alert.clickAction;
      if (alert.tag) aps['thread-id'] = alert.tag;
    }
    if (msg.mutableContent) aps['mutable-content'] = 1;
    return { ...(msg.apnsData ?? msg.data), aps };
  }

  async send(msg: BridgeMessage): Promise<BridgeResult> {
    const payload = this.buildPayload(msg);
    if (Buffer.byteLength(JSON.stringify(payload)) > APNS_MAX_PAYLOAD_BYTES) {
      return { outcome: 'rejected', reason: 'payload larger than APNs accepts', tooLarge: true };
    }
    const note = new apn.Notification();
    note.rawPayload = payload;
    note.topic = msg.apnsTopic ?? this.settings.topic;
    const background = msg.background === true && !msg.aps;
    note.pushType = background ? 'background' : 'alert';
    // Background pushes must use priority 5 (Apple's rule); otherwise Urgency decides.
    note.priority = background || msg.priority !== 'high' ? 5 : 10;
    // apns-expiration 0: deliver now or never, which is what TTL 0 means (RFC 8030 §5.2).
    note.expiry = msg.ttl === 0 ? 0 : Math.floor(Date.now() / 1000) + msg.ttl;
    if (msg.collapseKey) note.collapseId = msg.collapseKey.slice(0, 64);
    let result;
    try {
      result = await this.provider.send(note, msg.token);
    } catch (err) {
      return { outcome: 'unreachable', reason: `APNs: ${(err as Error).message}` };
    }
    if (result.sent.length > 0) return { outcome: 'delivered' };
    const failure = result.failed[0];
    if (!failure) return { outcome: 'unreachable', reason: 'APNs gave no answer' };
    return classify(failure.status, failure.response?.reason, failure.error);
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}

/** APNs replies ("Handling notification responses from APNs") → outcome. */
function classify(status: number | string | undefined, reason: string | undefined, error: Error | undefined): BridgeResult {
  const code = Number(status);
  const why = `APNs ${code || ''} ${reason ?? error?.message ?? ''}`.trim();
  if (!code) return /timeout|timed out/i.test(error?.message ?? '') ? { outcome: 'timeout', reason: why } : { outcome: 'unreachable', reason: why };
  const named = reason ? { code: reason } : {};
  if (code === 410 || reason === 'Unregistered' || reason === 'BadDeviceToken' || reason === 'DeviceTokenNotForTopic' || reason === 'ExpiredToken') {
    return { outcome: 'dead-token', reason: why, ...named };
  }
  if (code === 413 || reason === 'PayloadTooLarge') return { outcome: 'rejected', reason: why, tooLarge: true, ...named };
  if (code === 403 || reason === 'BadCertificate' || reason === 'BadCertificateEnvironment' || reason === 'TopicDisallowed' || reason === 'BadTopic') {
    return { outcome: 'misconfigured', reason: why, errno: 901, ...named };
  }
  if (code === 429) return { outcome: 'retry-later', reason: why, status: 429, retryAfter: null, ...named };
  if (code >= 500) return { outcome: 'retry-later', reason: why, status: 503, retryAfter: null, ...named };
  return { outcome: 'rejected', reason: why, tooLarge: false, ...named };
}
