import { type Bridge, type BridgeMessage, type BridgeResult, parseRetryAfter } from '../types.js';
import { type FreshToken, TokenCache } from '../token-cache.js';
import { Http1Origin, type HttpResponse, jsonBody, TransportError, transportOutcome } from '../http.js';

/**
 * Amazon Device Messaging: a small client of our own (npm has no maintained one). An OAuth2
 * client-credentials token (scope messaging:push) is cached until shortly before it expires; messages go to
 * POST /messaging/registrations/{registrationId}/messages.
 */

export interface AdmSettings {
  appId: string;
  clientId: string;
  clientSecret: string;
  baseUrl: string;
  tokenUrl: string;
  ca: Buffer | null;
  timeoutMs: number;
  maxConcurrent: number;
}

/** ADM refuses messages whose data exceeds 6 KB. */
export const ADM_MAX_MESSAGE_BYTES = 6144;

export class AdmBridge implements Bridge {
  readonly type = 'adm' as const;
  readonly appId: string;
  private readonly http: Http1Origin;
  private readonly tokenHttp: Http1Origin;
  private readonly tokens = new TokenCache(() => this.fetchToken());

  constructor(private readonly settings: AdmSettings) {
    this.appId = settings.appId;
    this.http = new Http1Origin(settings.baseUrl, settings.ca, settings.timeoutMs, settings.maxConcurrent);
    this.tokenHttp = new Http1Origin(new URL(settings.tokenUrl).origin, settings.ca, settings.timeoutMs, 2);
  }

  validateToken(token: string): boolean {
    return /^[A-Za-z0-9._:-]{8,2048}$/.test(token);
  }

  private async fetchToken(): Promise<FreshToken> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: 'messaging:push',
      client_id: this.settings.clientId,
      client_secret: this.settings.clientSecret,
    }).toString();
    // A transport failure here propagates as a TransportError: the send reports the token endpoint unreachable.
    const res = await this.tokenHttp.request(
      'POST',
      new URL(this.settings.tokenUrl).pathname,
      {
        'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
        'content-length': String(Buffer.byteLength(form)),
      },
      form,
    );
    const body = jsonBody(res);
    if (res.status !== 200 || typeof body['access_token'] !== 'string')
      throw new AdmTokenError(res.status, typeof body['error'] === 'string' ? body['error'] : '');
    const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : 3600;
    return { value: body['access_token'], expiresIn };
  }

  buildBody(msg: BridgeMessage): Record<string, unknown> {
    const body: Record<string, unknown> = { data: msg.data, expiresAfter: Math.max(1, msg.ttl) };
    if (msg.collapseKey) body['consolidationKey'] = msg.collapseKey;
    return body;
  }

  async send(msg: BridgeMessage): Promise<BridgeResult> {
    const body = JSON.stringify(this.buildBody(msg));
    if (Buffer.byteLength(JSON.stringify(msg.data)) > ADM_MAX_MESSAGE_BYTES) {
      return { outcome: 'rejected', reason: 'message larger than ADM accepts', tooLarge: true };
    }
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        const token = await this.tokens.get();
        res = await this.http.request(
          'POST',
          `/messaging/registrations/${encodeURIComponent(msg.token)}/messages`,
          {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json',
            'x-amzn-type-version': 'com.amazon.device.messaging.ADMMessage@1.0',
            'x-amzn-accept-type': 'com.amazon.device.messaging.ADMSendResult@1.0',
            'content-length': String(Buffer.byteLength(body)),
          },
          body,
        );
      } catch (err) {
        if (err instanceof AdmTokenError) {
          return err.status >= 500
            ? { outcome: 'unreachable', reason: `ADM token endpoint answered ${err.status}` }
            : { outcome: 'misconfigured', reason: `ADM credentials refused (${err.status} ${err.error})`, errno: 901 };
        }
        if (err instanceof TransportError) return transportOutcome('ADM', err);
        throw err;
      }
      const reply = jsonBody(res);
      const reason = typeof reply['reason'] === 'string' ? reply['reason'] : '';
      const why = `ADM ${res.status} ${reason}`.trim();
      const code = reason ? { code: reason } : {};
      if (res.status === 200) {
        // ADM may hand back a newer registration id: the registration keeps that one.
        const id = reply['registrationID'];
        return typeof id === 'string' && id !== msg.token ? { outcome: 'delivered', newToken: id } : { outcome: 'delivered' };
      }
      if (res.status === 401 && attempt === 0) {
        // AccessTokenExpired: fetch a new token and try once more.
        this.tokens.invalidate();
        continue;
      }
      if (res.status === 401) return { outcome: 'misconfigured', reason: why, errno: 901, ...code };
      if (res.status === 410 || reason === 'InvalidRegistrationId' || reason === 'Unregistered') return { outcome: 'dead-token', reason: why, ...code };
      if (res.status === 413 || reason === 'MessageTooLarge') return { outcome: 'rejected', reason: why, tooLarge: true, ...code };
      if (res.status === 429) return { outcome: 'retry-later', reason: why, status: 429, retryAfter: parseRetryAfter(res.headers['retry-after']), ...code };
      if (res.status >= 500) return { outcome: 'retry-later', reason: why, status: 503, retryAfter: parseRetryAfter(res.headers['retry-after']), ...code };
      return { outcome: 'rejected', reason: why, tooLarge: false, ...code };
    }
  }

  async close(): Promise<void> {
    this.http.close();
    this.tokenHttp.close();
  }
}

class AdmTokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
  ) {
    super(`ADM token endpoint answered ${status}`);
  }
}
