import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { type Bridge, type BridgeMessage, type BridgeResult, parseRetryAfter } from '../types.js';
import { type FreshToken, TokenCache } from '../token-cache.js';
import { Http1Origin, Http2Origin, type HttpResponse, jsonBody, TransportError, transportOutcome } from '../http.js';

/**
 * FCM HTTP v1 (https://fcm.googleapis.com/v1/projects/{project}/messages:send) with a service account.
 *
 * A small client of our own rather than firebase-admin: firebase-admin has no base-URL setting (the host is
 * a constant), its HTTP/2 path ignores the agent and sends a `:scheme` standard servers reject, and its
 * built-in 503 retries (up to ~7 s) cannot be turned off, which would hide Retry-After from our backoff.
 * Sends are multiplexed on one HTTP/2 session; the OAuth2 token (RFC 7523 JWT bearer grant) is cached until
 * shortly before it expires.
 */

export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export interface FcmSettings {
  appId: string;
  serviceAccount: ServiceAccount;
  baseUrl: string;
  tokenUrl: string;
  ca: Buffer | null;
  timeoutMs: number;
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** FCM refuses messages over 4096 bytes. */
export const FCM_MAX_MESSAGE_BYTES = 4096;

export class FcmBridge implements Bridge {
  readonly type = 'fcm' as const;
  readonly appId: string;
  private readonly send2: Http2Origin;
  private readonly tokenHttp: Http1Origin;
  private readonly key;
  private readonly tokens = new TokenCache(() => this.fetchToken());

  constructor(private readonly settings: FcmSettings) {
    this.appId = settings.appId;
    this.key = createPrivateKey(settings.serviceAccount.private_key);
    this.send2 = new Http2Origin(settings.baseUrl, settings.ca, settings.timeoutMs);
    this.tokenHttp = new Http1Origin(new URL(settings.tokenUrl).origin, settings.ca, settings.timeoutMs, 4);
  }

  validateToken(token: string): boolean {
    return /^[^\s]{8,4096}$/.test(token);
  }

  private async fetchToken(): Promise<FreshToken> {
    const sa = this.settings.serviceAccount;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ scope: SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(sa.private_key_id ? { kid: sa.private_key_id } : {}) })
      .setIssuer(sa.client_email)
      .setAudience(this.settings.tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(this.key);
    const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
    let res: HttpResponse;
    try {
      res = await this.tokenHttp.request(
        'POST',
        new URL(this.settings.tokenUrl).pathname,
        {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(form)),
        },
        form,
      );
    } catch (err) {
      throw new TokenError(`token endpoint: ${(err as Error).message}`, 0, err);
    }
    const body = jsonBody(res);
    if (res.status !== 200 || typeof body['access_token'] !== 'string') {
      throw new TokenError(`token endpoint answered ${res.status} ${typeof body['error'] === 'string' ? body['error'] : ''}`.trim(), res.status);
    }
    const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : 3600;
    return { value: body['access_token'], expiresIn };
  }

  /** The FCM v1 message for a BridgeMessage: a data message, with a notification only when asked. */
  buildMessage(msg: BridgeMessage): Record<string, unknown> {
    const android: Record<string, unknown> = { priority: msg.priority === 'high' ? 'high' : 'normal', ttl: `${msg.ttl}s` };
    if (msg.collapseKey) android['collapse_key'] = msg.collapseKey;
    const message: Record<string, unknown> = { token: msg.token, data: msg.data, android };
    if (msg.alert) {
      const { title, body, clickAction, tag, sound } = msg.alert;
      message['notification'] = { ...(title !== undefined ? { title } : {}), ...(body !== undefined ? { body } : {}) };
      const notification = { ...(clickAction ? { click_action: clickAction } : {}), ...(tag ? { tag } : {}), ...(sound ? { sound } : {}) };
      if (Object.keys(notification).length > 0) android['notification'] = notification;
    }
    return { message };
  }

  async send(msg: BridgeMessage): Promise<BridgeResult> {
    const body = JSON.stringify(this.buildMessage(msg));
    if (Buffer.byteLength(body) > FCM_MAX_MESSAGE_BYTES + 64) {
      return { outcome: 'rejected', reason: 'message larger than FCM accepts', tooLarge: true };
    }
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        const token = await this.tokens.get();
        res = await this.send2.request(
          'POST',
          `${new URL(this.settings.baseUrl).pathname.replace(/\/$/, '')}/v1/projects/${this.settings.serviceAccount.project_id}/messages:send`,
          {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json; charset=utf-8',
          },
          body,
        );
      } catch (err) {
        if (err instanceof TokenError) {
          // A token endpoint that is down is an outage; one that refuses our assertion is our credentials.
          if (err.cause instanceof TransportError) return transportOutcome('FCM token endpoint', err.cause);
          return err.status >= 500
            ? { outcome: 'unreachable', reason: `FCM token endpoint: ${err.message}` }
            : { outcome: 'misconfigured', reason: `FCM credentials refused: ${err.message}`, errno: 901 };
        }
        if (err instanceof TransportError) return transportOutcome('FCM', err);
        throw err;
      }
      const result = classify(res);
      // An access token revoked early: fetch a new one once.
      if (result === 'reauth' && attempt === 0) {
        this.tokens.invalidate();
        continue;
      }
      return result === 'reauth' ? { outcome: 'misconfigured', reason: 'FCM refused our access token', errno: 901, code: 'UNAUTHENTICATED' } : result;
    }
  }

  async close(): Promise<void> {
    this.send2.close();
    this.tokenHttp.close();
  }
}

class TokenError extends Error {
  constructor(
    message: string,
    readonly status: number,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/** FCM v1 error replies (google.rpc.Status with an FcmError detail) → outcome. */
function classify(res: HttpResponse): BridgeResult | 'reauth' {
  if (res.status === 200) return { outcome: 'delivered' };
  const error = (jsonBody(res)['error'] ?? {}) as { status?: string; message?: string; details?: { errorCode?: string }[] };
  const code = error.details?.find((d) => d.errorCode)?.errorCode ?? error.status ?? '';
  const reason = `FCM ${res.status} ${code}`.trim();
  const named = code ? { code } : {};
  switch (code) {
    case 'UNREGISTERED':
    case 'SENDER_ID_MISMATCH':
      return { outcome: 'dead-token', reason, code };
    case 'QUOTA_EXCEEDED':
      return { outcome: 'retry-later', reason, status: 429, retryAfter: parseRetryAfter(res.headers['retry-after']), code };
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return { outcome: 'retry-later', reason, status: 503, retryAfter: parseRetryAfter(res.headers['retry-after']), code };
    case 'THIRD_PARTY_AUTH_ERROR':
    case 'PERMISSION_DENIED':
      return { outcome: 'misconfigured', reason, errno: 901, code };
    case 'UNAUTHENTICATED':
      return 'reauth';
    case 'INVALID_ARGUMENT':
      return { outcome: 'rejected', reason: `${reason}: ${error.message ?? ''}`.trim(), tooLarge: /too big|too large/i.test(error.message ?? ''), code };
  }
  if (res.status === 404) return { outcome: 'dead-token', reason, ...named };
  if (res.status === 401) return 'reauth';
  if (res.status === 429) return { outcome: 'retry-later', reason, status: 429, retryAfter: parseRetryAfter(res.headers['retry-after']), ...named };
  if (res.status >= 500) return { outcome: 'retry-later', reason, status: 503, retryAfter: parseRetryAfter(res.headers['retry-after']), ...named };
  return { outcome: 'rejected', reason, tooLarge: res.status === 413, ...named };
}
