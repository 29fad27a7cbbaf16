import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import type { TestPki } from './pki.js';

/**
 * Local fakes of FCM (HTTP v1 and its OAuth2 token endpoint), APNs (HTTP/2 over TLS, token and certificate
 * authentication) and ADM (OAuth2 and messaging), on one HTTP/2 TLS server with HTTP/1.1 fallback. Each
 * validates what the real service validates — path, method, headers, authentication, body shape, size — and
 * answers the documented errors; a test can script the next replies for a device token.
 */

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer only after this many milliseconds (a slow provider). */
  delayMs?: number;
}

export interface Received {
  provider: 'fcm' | 'apns' | 'adm';
  token: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  httpVersion: string;
  auth: 'token' | 'certificate' | 'bearer';
}

const FCM_PROJECT = 'pushgate-test';
export const APNS_TEAM = 'TEAM123456';
export const APNS_KEY_ID = 'KEY1234567';
export const APNS_TOPIC = 'org.example.pushgate';
export const ADM_CLIENT = { clientId: 'amzn1.application-oa2-client.test', clientSecret: 'adm-secret-0123456789' };

const fcmError = (code: number, status: string, errorCode: string | null, message = status) => ({
  status: code,
  body: { error: { code, message, status, details: errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : [] } },
});

/** The documented error replies, by name, for scripting. */
export const Errors = {
  fcm: {
    unregistered: fcmError(404, 'NOT_FOUND', 'UNREGISTERED', 'Requested entity was not found.'),
    invalidArgument: fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token'),
    senderIdMismatch: fcmError(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH'),
    quotaExceeded: (retryAfter: number) => ({ ...fcmError(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED'), headers: { 'retry-after': String(retryAfter) } }),
    unavailable: fcmError(503, 'UNAVAILABLE', 'UNAVAILABLE'),
    internal: fcmError(500, 'INTERNAL', 'INTERNAL'),
    thirdPartyAuth: fcmError(401, 'UNAUTHENTICATED', 'THIRD_PARTY_AUTH_ERROR'),
  },
  apns: {
    unregistered: { status: 410, body: { reason: 'Unregistered', timestamp: Date.now() } },
    badDeviceToken: { status: 400, body: { reason: 'BadDeviceToken' } },
    tooManyRequests: { status: 429, body: { reason: 'TooManyRequests' } },
    serviceUnavailable: { status: 503, body: { reason: 'ServiceUnavailable' } },
    internalServerError: { status: 500, body: { reason: 'InternalServerError' } },
  },
  adm: {
    invalidRegistrationId: { status: 400, body: { reason: 'InvalidRegistrationId' } },
    unregistered: { status: 410, body: { reason: 'Unregistered' } },
    tooManyRequests: (retryAfter: number) => ({ status: 429, body: { reason: 'MaxRateExceeded' }, headers: { 'retry-after': String(retryAfter) } }),
    unavailable: { status: 503, body: { reason: 'Unavailable' } },
    messageTooLarge: { status: 413, body: { reason: 'MessageTooLarge' } },
  },
};

export class ProviderFakes {
  readonly received: Received[] = [];
  private readonly scripts = new Map<string, Reply[]>();
  private readonly fcmTokens = new Set<string>();
  private readonly admTokens = new Set<string>();
  fcmTokenRequests = 0;
  admTokenRequests = 0;
  /** Most requests in flight at once, per provider. */
  inFlight = 0;
  maxInFlight = 0;
  readonly serviceAccountFile: string;
  readonly apnsKeyFile: string;
  private readonly saPublicKey: KeyObject;
  private readonly apnsPublicKey: KeyObject;
  private server: Http2SecureServer;
  port = 0;

  constructor(private readonly pki: TestPki) {
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.saPublicKey = sa.publicKey;
    this.serviceAccountFile = join(pki.dir, 'service-account.json');
    const apns = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.apnsPublicKey = apns.publicKey;
    this.apnsKeyFile = join(pki.dir, `AuthKey_${APNS_KEY_ID}.p8`);
    writeFileSync(this.apnsKeyFile, apns.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    this.server = createSecureServer(
      { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, allowHTTP1: true, requestCert: true, rejectUnauthorized: false },
      (req, res) => void this.handle(req, res),
    );
    this.saPrivatePem = sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  private readonly saPrivatePem: string;

  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    writeFileSync(
      this.serviceAccountFile,
      JSON.stringify({
        type: 'service_account',
        project_id: FCM_PROJECT,
        private_key_id: 'test-key-1',
        private_key: this.saPrivatePem,
        client_email: `pushgate@${FCM_PROJECT}.iam.gserviceaccount.com`,
        token_uri: `${this.origin}/token`,
      }),
    );
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** The next replies for a device token, in order; afterwards the token succeeds again. */
  script(token: string, ...replies: Reply[]): void {
    this.scripts.set(token, [...(this.scripts.get(token) ?? []), ...replies]);
  }

  /** Forget issued access tokens, as if they expired early. */
  expireAccessTokens(): void {
    this.fcmTokens.clear();
    this.admTokens.clear();
  }

  private readonly waiters: { provider: string; token: string; after: number; resolve: (r: Received) => void }[] = [];

  /** Resolves with the next message for this device that arrives after the current ones (event-driven). */
  next(provider: Received['provider'], token: string, timeoutMs = 20_000): Promise<Received> {
    const after = this.for(provider, token).length;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${provider} message for ${token}`)), timeoutMs);
      this.waiters.push({ provider, token, after, resolve: (r) => (clearTimeout(t), resolve(r)) });
    });
  }

  private record(r: Received): void {
    this.received.push(r);
    for (const w of [...this.waiters]) {
      if (w.provider === r.provider && w.token === r.token && this.for(w.provider, w.token).length > w.after) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(r);
      }
    }
  }

  reset(): void {
    this.received.length = 0;
    this.scripts.clear();
    this.maxInFlight = 0;
  }

  for(provider: Received['provider'], token: string): Received[] {
    return this.received.filter((r) => r.provider === provider && r.token === token);
  }

  private async handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, this.origin);
    const send = (r: Reply) => {
      res.writeHead(r.status, { 'content-type': 'application/json', ...(r.headers ?? {}) });
      res.end(r.body === undefined ? '' : JSON.stringify(r.body));
    };
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      let reply: Reply;
      if (url.pathname === '/token') reply = await this.fcmToken(req, raw);
      else if (/^\/v1\/projects\/[^/]+\/messages:send$/.test(url.pathname)) reply = await this.fcmSend(req, url, raw);
      else if (url.pathname.startsWith('/3/device/')) reply = await this.apnsSend(req, url, raw);
      else if (url.pathname === '/auth/o2/token') reply = this.admToken(req, raw);
      else if (/^\/messaging\/registrations\/[^/]+\/messages$/.test(url.pathname)) reply = this.admSend(req, url, raw);
      else reply = { status: 404, body: { error: 'not found' } };
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      send(reply);
    } finally {
      this.inFlight--;
    }
  }

  private scripted(token: string): Reply | null {
    const queue = this.scripts.get(token);
    return queue?.shift() ?? null;
  }

  // --- FCM ---------------------------------------------------------------------------------------

  private async fcmToken(req: Http2ServerRequest, raw: Buffer): Promise<Reply> {
    this.fcmTokenRequests++;
    if (req.method !== 'POST' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
      return { status: 400, body: { error: 'invalid_request' } };
    const form = new URLSearchParams(raw.toString());
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return { status: 400, body: { error: 'unsupported_grant_type' } };
    try {
      const { payload } = await jwtVerify(form.get('assertion') ?? '', this.saPublicKey, {
        algorithms: ['RS256'],
        audience: `${this.origin}/token`,
        issuer: `pushgate@${FCM_PROJECT}.iam.gserviceaccount.com`,
      });
      if (!String(payload['scope']).split(' ').includes('https://www.googleapis.com/auth/firebase.messaging')) throw new Error('scope');
      if ((payload.exp ?? 0) - (payload.iat ?? 0) > 3600) throw new Error('lifetime');
    } catch {
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
    }
    const token = `ya29.${randomBytes(24).toString('base64url')}`;
    this.fcmTokens.add(token);
    return { status: 200, body: { access_token: token, expires_in: 3599, token_type: 'Bearer' } };
  }

  private async fcmSend(req: Http2ServerRequest, url: URL, raw: Buffer): Promise<Reply> {
    const bearer = String(req.headers['authorization'] ?? '').replace(/^Bearer /, '');
    if (req.method !== 'POST') return fcmError(405, 'METHOD_NOT_ALLOWED', null);
    if (!this.fcmTokens.has(bearer)) return fcmError(401, 'UNAUTHENTICATED', null, 'Request had invalid authentication credentials.');
    if (url.pathname !== `/v1/projects/${FCM_PROJECT}/messages:send`) return fcmError(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch {
      return fcmError(400, 'INVALID_ARGUMENT', null, 'Invalid JSON payload received.');
    }
    const message = body['message'] as Record<string, unknown> | undefined;
    if (!message || typeof message !== 'object') return fcmError(400, 'INVALID_ARGUMENT', null, 'message is required');
    const targets = ['token', 'topic', 'condition'].filter((t) => message[t] !== undefined);
    if (targets.length !== 1) return fcmError(400, 'INVALID_ARGUMENT', null, 'exactly one of token, topic, condition');
    const token = String(message['token']);
    const data = (message['data'] ?? {}) as Record<string, unknown>;
    if (Object.values(data).some((v) => typeof v !== 'string')) return fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'data values must be strings');
    const android = (message['android'] ?? {}) as Record<string, unknown>;
    if (android['ttl'] !== undefined && (typeof android['ttl'] !== 'string' || !/^\d+(\.\d{1,9})?s$/.test(android['ttl'])))
      return fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'Invalid ttl');
    if (android['priority'] !== undefined && (typeof android['priority'] !== 'string' || !['normal', 'high'].includes(android['priority'])))
      return fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'Invalid priority');
    if (Buffer.byteLength(JSON.stringify(message)) > 4096 + 64) return fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'Message is too big');
    const scripted = this.scripted(token);
    this.record({ provider: 'fcm', token, headers: req.headers, body: message, httpVersion: req.httpVersion, auth: 'bearer' });
    return scripted ?? { status: 200, body: { name: `projects/${FCM_PROJECT}/messages/${randomUUID()}` } };
  }

  // --- APNs --------------------------------------------------------------------------------------

  private async apnsAuth(req: Http2ServerRequest): Promise<'token' | 'certificate' | Reply> {
    const auth = req.headers['authorization'];
    if (typeof auth === 'string' && auth.startsWith('bearer ')) {
      const jwt = auth.slice(7);
      try {
        if (decodeProtectedHeader(jwt).kid !== APNS_KEY_ID) throw new Error('kid');
        const { payload } = await jwtVerify(jwt, this.apnsPublicKey, { algorithms: ['ES256'], issuer: APNS_TEAM });
        if (!payload.iat || payload.iat < Date.now() / 1000 - 3600) return { status: 403, body: { reason: 'ExpiredProviderToken' } };
      } catch {
        return { status: 403, body: { reason: 'InvalidProviderToken' } };
      }
      return 'token';
    }
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate?.(true);
    if (peer && peer.raw && socket.authorized) {
      const x = new X509Certificate(peer.raw);
      // Apple's development/production push extensions.
      if (x.toString().includes('1.2.840.113635.100.6.3.1') || x.raw.includes(Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06, 0x03, 0x01])))
        return 'certificate';
      return { status: 403, body: { reason: 'BadCertificate' } };
    }
    return { status: 403, body: { reason: 'MissingProviderToken' } };
  }

  private async apnsSend(req: Http2ServerRequest, url: URL, raw: Buffer): Promise<Reply> {
    if (req.httpVersion !== '2.0') return { status: 505, body: { reason: 'HTTP/2 required' } };
    if (req.method !== 'POST') return { status: 405, body: { reason: 'MethodNotAllowed' } };
    const auth = await this.apnsAuth(req);
    if (typeof auth !== 'string') return auth;
    const token = url.pathname.slice('/3/device/'.length);
    const h = req.headers;
    if (!/^[0-9a-fA-F]{64,200}$/.test(token)) return { status: 400, body: { reason: 'BadDeviceToken' } };
    if (!h['apns-topic']) return { status: 400, body: { reason: 'MissingTopic' } };
    if (h['apns-topic'] !== APNS_TOPIC && h['apns-topic'] !== `${APNS_TOPIC}.voip`) return { status: 400, body: { reason: 'DeviceTokenNotForTopic' } };
    const pushType = String(h['apns-push-type'] ?? 'alert');
    if (!['alert', 'background', 'voip', 'complication', 'fileprovider', 'mdm', 'location', 'liveactivity', 'pushtotalk'].includes(pushType))
      return { status: 400, body: { reason: 'InvalidPushType' } };
    const priority = h['apns-priority'] === undefined ? 10 : Number(h['apns-priority']);
    if (![1, 5, 10].includes(priority)) return { status: 400, body: { reason: 'BadPriority' } };
    if (pushType === 'background' && priority !== 5) return { status: 400, body: { reason: 'BadPriority' } };
    if (h['apns-expiration'] !== undefined && !/^\d+$/.test(String(h['apns-expiration']))) return { status: 400, body: { reason: 'BadExpirationDate' } };
    if (h['apns-collapse-id'] !== undefined && Buffer.byteLength(String(h['apns-collapse-id'])) > 64) return { status: 400, body: { reason: 'BadCollapseId' } };
    if (raw.length > 4096) return { status: 413, body: { reason: 'PayloadTooLarge' } };
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch {
      return { status: 400, body: { reason: 'PayloadEmpty' } };
    }
    if (typeof body['aps'] !== 'object') return { status: 400, body: { reason: 'PayloadEmpty' } };
    const scripted = this.scripted(token);
    this.record({ provider: 'apns', token, headers: h, body, httpVersion: req.httpVersion, auth });
    return scripted ?? { status: 200, headers: { 'apns-id': randomUUID() } };
  }

  // --- ADM ---------------------------------------------------------------------------------------

  private admToken(req: Http2ServerRequest, raw: Buffer): Reply {
    this.admTokenRequests++;
    const form = new URLSearchParams(raw.toString());
    if (req.method !== 'POST' || form.get('grant_type') !== 'client_credentials' || form.get('scope') !== 'messaging:push') {
      return { status: 400, body: { error: 'invalid_request' } };
    }
    if (form.get('client_id') !== ADM_CLIENT.clientId || form.get('client_secret') !== ADM_CLIENT.clientSecret) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    const token = `Atc|${randomBytes(24).toString('base64url')}`;
    this.admTokens.add(token);
    return { status: 200, body: { access_token: token, expires_in: 3600, scope: 'messaging:push', token_type: 'bearer' } };
  }

  private admSend(req: Http2ServerRequest, url: URL, raw: Buffer): Reply {
    const h = req.headers;
    if (req.method !== 'POST') return { status: 405, body: { reason: 'MethodNotAllowed' } };
    if (
      h['x-amzn-type-version'] !== 'com.amazon.device.messaging.ADMMessage@1.0' ||
      h['x-amzn-accept-type'] !== 'com.amazon.device.messaging.ADMSendResult@1.0'
    ) {
      return { status: 400, body: { reason: 'InvalidData' } };
    }
    const bearer = String(h['authorization'] ?? '').replace(/^Bearer /, '');
    if (!this.admTokens.has(bearer)) return { status: 401, body: { reason: 'AccessTokenExpired' } };
    const token = decodeURIComponent(url.pathname.split('/')[3] ?? '');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString()) as Record<string, unknown>;
    } catch {
      return { status: 400, body: { reason: 'InvalidData' } };
    }
    const data = body['data'];
    if (typeof data !== 'object' || data === null || Object.values(data).some((v) => typeof v !== 'string'))
      return { status: 400, body: { reason: 'InvalidData' } };
    if (Buffer.byteLength(JSON.stringify(data)) > 6144) return { status: 413, body: { reason: 'MessageTooLarge' } };
    if (body['expiresAfter'] !== undefined && !(Number.isInteger(body['expiresAfter']) && (body['expiresAfter'] as number) >= 1))
      return { status: 400, body: { reason: 'InvalidExpiration' } };
    if (body['consolidationKey'] !== undefined && typeof body['consolidationKey'] !== 'string')
      return { status: 400, body: { reason: 'InvalidConsolidationKey' } };
    const scripted = this.scripted(token);
    this.record({ provider: 'adm', token, headers: h, body, httpVersion: req.httpVersion, auth: 'bearer' });
    return scripted ?? { status: 200, body: { registrationID: token } };
  }
}
