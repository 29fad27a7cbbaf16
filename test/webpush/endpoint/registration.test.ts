import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registrationSecret } from '../../../src/webpush/endpoint/registration.js';
import { bridgeWorld, type BridgeWorld, providerFakes } from '../../fakes/setup.js';
import { Errors, type ProviderFakes } from '../../fakes/providers.js';
import { GATEWAY_KINDS, type GatewayUnderTest } from '../../helpers/kinds.js';
import { post } from '../../helpers/push.js';

const FCM_TOKEN = 'fcm-device-token-0001';
const APNS_TOKEN = 'ab'.repeat(32);
const ADM_TOKEN = 'amzn1.adm-registration.v3.device-0001';

/** A call of the bridge registration API at `origin`: a JSON body, and the registration's secret when given. */
const apiAt = (origin: string, path: string, method: string, body?: unknown, secret?: string) =>
  fetch(`${origin}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
    body: body === undefined ? null : JSON.stringify(body),
  });

/** A registration that must succeed: its uaid, channel, endpoint and secret. */
async function registerAt(origin: string, type: string, app: string, token: string, extra: Record<string, unknown> = {}) {
  const res = await apiAt(origin, `/v1/${type}/${app}/registration`, 'POST', { token, ...extra });
  expect(res.status).toBe(200);
  return (await res.json()) as { uaid: string; channelID: string; endpoint: string; secret: string };
}

// Against each gateway of GATEWAY_KINDS: a registration and its pushes land on any worker, or on the endpoint node
// of a split fleet, each process with its own bridges. Each process's provider tokens are checked in process, below.
describe.each(GATEWAY_KINDS)('the autopush bridge registration API, end to end through the fakes ($name)', (kind) => {
  let fakes: ProviderFakes;
  let gw: GatewayUnderTest;
  let base: string;
  beforeAll(async () => {
    let bridgesFile: string;
    ({ fakes, bridgesFile } = await providerFakes());
    gw = await kind.start({ bridges: bridgesFile });
    base = gw.url;
  });
  afterAll(async () => {
    await gw?.close();
    await fakes?.stop();
  });
  beforeEach(() => fakes.reset());

  const api = (path: string, method: string, body?: unknown, secret?: string) => apiAt(base, path, method, body, secret);
  const register = (type: string, app: string, token: string, extra: Record<string, unknown> = {}) => registerAt(base, type, app, token, extra);

  it("registers an FCM device and delivers a Web Push POST in autopush's bridged shape", async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    expect(reg.uaid).toMatch(/^[0-9a-f]{32}$/);
    expect(reg.channelID).toMatch(/^[0-9a-f-]{36}$/);
    expect(reg.secret).toBe(registrationSecret(gw.config.authKeyList[0]!, reg.uaid));
    expect(reg.endpoint.startsWith(`${gw.config.publicUrl}/wpush/v1/`)).toBe(true);

    const res = await post(reg.endpoint, { TTL: '30', Topic: 'news', Urgency: 'high', 'Content-Encoding': 'aes128gcm' }, Buffer.from('encrypted-bytes'));
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(/\/m\//);
    const [got] = fakes.for('fcm', FCM_TOKEN);
    expect(got!.httpVersion).toBe('2.0');
    expect(got!.body).toEqual({
      token: FCM_TOKEN,
      data: { chid: reg.channelID, body: Buffer.from('encrypted-bytes').toString('base64url'), con: 'aes128gcm' },
      // autopush's minimum FCM TTL is 60 s; Urgency high → priority high; Topic → collapse_key.
      android: { priority: 'high', ttl: '60s', collapse_key: 'news' },
    });
    expect((await post(reg.endpoint, { TTL: '7200' })).status).toBe(201);
    expect(fakes.for('fcm', FCM_TOKEN)[1]!.body).toEqual({ token: FCM_TOKEN, data: { chid: reg.channelID }, android: { priority: 'normal', ttl: '7200s' } });
  });

  it('passes legacy aesgcm headers as enc and cryptokey', async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    const res = await post(reg.endpoint, { TTL: '60', 'Content-Encoding': 'aesgcm', Encryption: 'salt=c2FsdA', 'Crypto-Key': 'dh=ZGg' }, 'x');
    expect(res.status).toBe(201);
    expect(fakes.for('fcm', FCM_TOKEN)[0]!.body['data']).toMatchObject({ con: 'aesgcm', enc: 'salt=c2FsdA', cryptokey: 'dh=ZGg' });
  });

  it('updates the token, lists, adds and removes channels, and unregisters', async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    const path = `/v1/fcm/org.example.app/registration/${reg.uaid}`;
    expect((await api(path, 'PUT', { token: 'fcm-device-token-0002' }, reg.secret)).status).toBe(200);
    expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
    expect(fakes.for('fcm', 'fcm-device-token-0002')).toHaveLength(1);

    const chid = randomUUID();
    const sub = await api(`${path}/subscription`, 'POST', { channelID: chid }, reg.secret);
    expect(sub.status).toBe(200);
    const { endpoint } = (await sub.json()) as { endpoint: string };
    expect(await (await api(path, 'GET', undefined, reg.secret)).json()).toEqual({ uaid: reg.uaid, channelIDs: expect.arrayContaining([reg.channelID, chid]) });
    expect((await api(`${path}/subscription/${chid}`, 'DELETE', undefined, reg.secret)).status).toBe(200);
    expect((await post(endpoint, { TTL: '60' })).status).toBe(410);
    const again = await api(`${path}/subscription/${chid}`, 'DELETE', undefined, reg.secret);
    expect(again.status).toBe(410);
    expect(await again.json()).toMatchObject({ errno: 106 });

    expect((await api(path, 'DELETE', undefined, reg.secret)).status).toBe(200);
    const gone = await post(reg.endpoint, { TTL: '60' });
    expect(gone.status).toBe(410);
    expect(await gone.json()).toMatchObject({ errno: 106 });
  });

  it('checks the secret in constant time and answers 401 errno 109 without it', async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    const other = await register('fcm', 'org.example.app', FCM_TOKEN);
    const path = `/v1/fcm/org.example.app/registration/${reg.uaid}`;
    for (const secret of [undefined, 'nope', other.secret, reg.secret.slice(0, -1)]) {
      const res = await api(path, 'GET', undefined, secret);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 401, errno: 109 });
    }
    const webpushScheme = await fetch(`${base}${path}`, { headers: { authorization: `WebPush ${reg.secret}` } });
    expect(webpushScheme.status).toBe(200);
    // Counting and logging each refusal (issue 9 finding 17): test/security/bridge.test.ts.
  });

  it.each([
    ['an unknown router type', '/v1/gcm/org.example.app/registration', { token: FCM_TOKEN }, 400, 108],
    ['an unknown app id', '/v1/fcm/org.unknown/registration', { token: FCM_TOKEN }, 400, 108],
    ['a malformed FCM token', '/v1/fcm/org.example.app/registration', { token: 'short' }, 400, 108],
    ['a non-hex APNs token', '/v1/apns/org.example.app/registration', { token: 'not-hex-'.repeat(10) }, 400, 108],
    ['a missing token', '/v1/fcm/org.example.app/registration', {}, 400, 999],
    ['a non-UUID channelID', '/v1/fcm/org.example.app/registration', { token: FCM_TOKEN, channelID: 'nope' }, 400, 999],
    ['a bad VAPID key', '/v1/fcm/org.example.app/registration', { token: FCM_TOKEN, key: 'nope' }, 400, 110],
    ['a token over 4 KB', '/v1/adm/org.example.kindle/registration', { token: 'a'.repeat(4097) }, 400, 108],
    [
      'router data over 8 KB (aps as a string)',
      '/v1/apns/org.example.app/registration',
      { token: APNS_TOKEN, aps: JSON.stringify({ alert: 'x'.repeat(8200) }) },
      400,
      999,
    ],
  ])('refuses %s', async (_name, path, body, status, errno) => {
    const res = await api(path, 'POST', body);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ code: status, errno });
  });

  it('refuses a malformed uaid, a body that is not JSON, and a uaid of another app', async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    expect((await api('/v1/fcm/org.example.app/registration/NOTAUAID', 'GET', undefined, reg.secret)).status).toBe(400);
    const notJson = await fetch(`${base}/v1/fcm/org.example.app/registration`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(notJson.status).toBe(400);
    const wrongApp = await api(`/v1/apns/org.example.app/registration/${reg.uaid}`, 'GET', undefined, reg.secret);
    expect(wrongApp.status).toBe(410);
  });

  it('binds a registration to a VAPID key (v2 endpoint) when one is given', async () => {
    const key = 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U';
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN, { key });
    expect(reg.endpoint).toMatch(/\/wpush\/v2\//);
    expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(401);
  });

  describe('what the sender sees for each provider answer', () => {
    it('drops the registration for a dead token: 410 now and from then on', async () => {
      const reg = await register('fcm', 'org.example.app', 'fcm-dead-token-0001');
      fakes.script('fcm-dead-token-0001', Errors.fcm.unregistered);
      const res = await post(reg.endpoint, { TTL: '60' });
      expect(res.status).toBe(410);
      expect(await res.json()).toMatchObject({ errno: 105 });
      expect(await gw.store.getUser(reg.uaid)).toBeNull();
      expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(410);
      // SENDER_ID_MISMATCH: the token belongs to another sender, it is dead for us too.
      const mismatch = await register('fcm', 'org.example.app', 'fcm-mismatch-0001');
      fakes.script('fcm-mismatch-0001', Errors.fcm.senderIdMismatch);
      expect((await post(mismatch.endpoint, { TTL: '60' })).status).toBe(410);
    });

    it("passes a rate limit on as 429 with the provider's Retry-After, keeping the registration", async () => {
      const reg = await register('fcm', 'org.example.app', 'fcm-busy-token-0001');
      fakes.script('fcm-busy-token-0001', Errors.fcm.quotaExceeded(30));
      const res = await post(reg.endpoint, { TTL: '60' });
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(await res.json()).toMatchObject({ errno: 201 });
      expect(await gw.store.getUser(reg.uaid)).not.toBeNull();
    });

    it('retries a transient outage with backoff and succeeds', async () => {
      const reg = await register('fcm', 'org.example.app', 'fcm-flaky-token-0001');
      fakes.script('fcm-flaky-token-0001', Errors.fcm.unavailable, Errors.fcm.internal);
      const res = await post(reg.endpoint, { TTL: '60' });
      expect(res.status).toBe(201);
      expect(fakes.for('fcm', 'fcm-flaky-token-0001')).toHaveLength(3);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/pushgate_bridge_retries_total\{type="fcm",app="org.example.app"\} [2-9]/);
      expect(metrics).toMatch(/pushgate_bridge_sent_total\{type="fcm",app="org.example.app"\} [1-9]/);
    });

    it('answers 503 with Retry-After when the outage outlasts the retries, never 404/410', async () => {
      const reg = await register('fcm', 'org.example.app', 'fcm-down-token-0001');
      fakes.script('fcm-down-token-0001', Errors.fcm.unavailable, Errors.fcm.unavailable, Errors.fcm.unavailable);
      const res = await post(reg.endpoint, { TTL: '60' });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(await res.json()).toMatchObject({ errno: 201 });
      expect(await gw.store.getUser(reg.uaid)).not.toBeNull();
    });

    it('answers 502 errno 901 for refused credentials and 900 for a refused message', async () => {
      const reg = await register('fcm', 'org.example.app', 'fcm-auth-token-0001');
      fakes.script('fcm-auth-token-0001', Errors.fcm.thirdPartyAuth, Errors.fcm.invalidArgument);
      const auth = await post(reg.endpoint, { TTL: '60' });
      expect(auth.status).toBe(502);
      expect(await auth.json()).toMatchObject({ errno: 901 });
      const invalid = await post(reg.endpoint, { TTL: '60' });
      expect(invalid.status).toBe(502);
      expect(await invalid.json()).toMatchObject({ errno: 900 });
    });

    it('refuses a message too large for FCM with 413 errno 104 before sending anything', async () => {
      const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
      // 5,600 bytes is within the endpoint's own limit (PUSHGATE_MAX_DATA_BYTES) but not FCM's.
      for (const size of [4000, 5600]) {
        const res = await post(reg.endpoint, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, Buffer.alloc(size, 1));
        expect(res.status).toBe(413);
        expect(await res.json()).toMatchObject({ errno: 104 });
      }
      expect(fakes.for('fcm', FCM_TOKEN)).toHaveLength(0);
    });
  });

  describe('APNs', () => {
    it('sends with token auth over HTTP/2: topic, push type, priority, expiration, collapse id', async () => {
      const reg = await register('apns', 'org.example.app', APNS_TOKEN);
      const before = Math.floor(Date.now() / 1000);
      const res = await post(reg.endpoint, { TTL: '120', Topic: 'inbox', 'Content-Encoding': 'aes128gcm' }, 'cipher');
      expect(res.status).toBe(201);
      const [got] = fakes.for('apns', APNS_TOKEN);
      expect(got!.auth).toBe('token');
      expect(got!.httpVersion).toBe('2.0');
      expect(got!.headers).toMatchObject({
        'apns-topic': 'org.example.pushgate',
        'apns-push-type': 'alert',
        'apns-priority': '5',
        'apns-collapse-id': 'inbox',
      });
      expect(Number(got!.headers['apns-expiration'])).toBeGreaterThanOrEqual(before + 120);
      expect(got!.body).toMatchObject({
        aps: { 'mutable-content': 1 },
        chid: reg.channelID,
        body: Buffer.from('cipher').toString('base64url'),
        con: 'aes128gcm',
      });
    });

    it('sends with certificate auth to the sandbox app', async () => {
      const reg = await register('apns', 'org.example.app.dev', APNS_TOKEN);
      expect((await post(reg.endpoint, { TTL: '0', Urgency: 'high' })).status).toBe(201);
      const [got] = fakes.for('apns', APNS_TOKEN);
      expect(got!.auth).toBe('certificate');
      expect(got!.headers).toMatchObject({ 'apns-priority': '10', 'apns-expiration': '0' });
    });

    it('drops an unregistered device and passes 429 and 503 on', async () => {
      const dead = 'cd'.repeat(32);
      const reg = await register('apns', 'org.example.app', dead);
      fakes.script(dead, Errors.apns.unregistered);
      expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(410);
      expect(await gw.store.getUser(reg.uaid)).toBeNull();
      const busy = 'ef'.repeat(32);
      const reg2 = await register('apns', 'org.example.app', busy);
      fakes.script(busy, Errors.apns.tooManyRequests, Errors.apns.tooManyRequests, Errors.apns.tooManyRequests);
      expect((await post(reg2.endpoint, { TTL: '60' })).status).toBe(429);
      fakes.script(busy, Errors.apns.serviceUnavailable, Errors.apns.internalServerError, Errors.apns.serviceUnavailable);
      expect((await post(reg2.endpoint, { TTL: '60' })).status).toBe(503);
      expect(await gw.store.getUser(reg2.uaid)).not.toBeNull();
    });

    it('uses the aps dictionary given at registration', async () => {
      const reg = await register('apns', 'org.example.app', APNS_TOKEN, { aps: { alert: { 'loc-key': 'SentTab.body' }, 'mutable-content': 1 } });
      expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
      expect(fakes.for('apns', APNS_TOKEN)[0]!.body['aps']).toEqual({ alert: { 'loc-key': 'SentTab.body' }, 'mutable-content': 1 });
    });
  });

  describe('ADM', () => {
    it('sends data, consolidationKey and expiresAfter', async () => {
      const reg = await register('adm', 'org.example.kindle', ADM_TOKEN);
      expect((await post(reg.endpoint, { TTL: '90', Topic: 'mail' })).status).toBe(201);
      const [got] = fakes.for('adm', ADM_TOKEN);
      expect(got!.body).toEqual({ data: { chid: reg.channelID }, expiresAfter: 90, consolidationKey: 'mail' });
    });

    it('refreshes an expired token once, keeps a new registration id, and drops invalid ones', async () => {
      const reg = await register('adm', 'org.example.kindle', ADM_TOKEN);
      fakes.expireAccessTokens();
      fakes.script(ADM_TOKEN, { status: 200, body: { registrationID: 'amzn1.adm-registration.v3.device-0002' } });
      expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
      expect((await gw.store.getUser(reg.uaid))?.routerData?.['token']).toBe('amzn1.adm-registration.v3.device-0002');
      fakes.script('amzn1.adm-registration.v3.device-0002', Errors.adm.invalidRegistrationId);
      expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(410);
      expect(await gw.store.getUser(reg.uaid)).toBeNull();
    });

    it('passes 429 with Retry-After on', async () => {
      const reg = await register('adm', 'org.example.kindle', 'amzn1.adm-registration.v3.busy');
      fakes.script('amzn1.adm-registration.v3.busy', Errors.adm.tooManyRequests(45));
      const res = await post(reg.endpoint, { TTL: '60' });
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('45');
    });
  });
});

// Each process caches its provider tokens: checked in one process, where every push goes through the same bridges.
describe('provider tokens, cached by the process that sends', () => {
  let w: BridgeWorld;
  beforeAll(async () => {
    w = await bridgeWorld();
  });
  afterAll(async () => {
    await w.close();
  });

  const register = (type: string, app: string, token: string) => registerAt(w.gw.url, type, app, token);

  it('reuses the FCM OAuth token, and fetches a new one once when the provider refuses the cached one', async () => {
    const reg = await register('fcm', 'org.example.app', FCM_TOKEN);
    expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
    const before = w.fakes.fcmTokenRequests;
    expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
    expect(w.fakes.fcmTokenRequests).toBe(before);
    w.fakes.expireAccessTokens();
    expect((await post(reg.endpoint, { TTL: '60' })).status).toBe(201);
    expect(w.fakes.fcmTokenRequests).toBe(before + 1);
  });

  it('sends ADM pushes with one cached client-credentials token', async () => {
    const reg = await register('adm', 'org.example.kindle', ADM_TOKEN);
    const tokens = w.fakes.admTokenRequests;
    expect((await post(reg.endpoint, { TTL: '90', Topic: 'mail' })).status).toBe(201);
    expect((await post(reg.endpoint, { TTL: '90' })).status).toBe(201);
    expect(w.fakes.admTokenRequests - tokens).toBeLessThanOrEqual(1);
  });
});

describe('bridge registrations are bounded and provider failures are told apart', () => {
  let w: BridgeWorld;
  beforeAll(async () => {
    w = await bridgeWorld({ bridgeMaxChannels: 3, bridgeTimeout: 1 });
  });
  afterAll(async () => {
    await w.close();
  });

  it('answers 502 errno 903 when the provider does not answer within PUSHGATE_BRIDGE_TIMEOUT', async () => {
    const token = 'fcm-device-token-slow';
    const reg = await registerAt(w.gw.url, 'fcm', 'org.example.app', token);
    const slow = { status: 200, body: { name: 'late' }, delayMs: 1500 };
    w.fakes.script(token, slow, slow, slow);
    const res = await post(reg.endpoint, { TTL: '60' });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 502, errno: 903 });
  }, 20_000);
});
