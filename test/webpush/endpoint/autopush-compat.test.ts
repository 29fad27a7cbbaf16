/**
 * The push endpoint answers what autopush-rs 1.83 answers (issue 11): body size, check order, TTL / Topic /
 * Urgency / crypto-header leniency, VAPID leniency and failure counting, CORS, and message ids in autopush's
 * format (checked with Python's `cryptography`, the Fernet implementation autopush's format comes from).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { MultiFernet, FernetKey } from '../../../src/webpush/protocol/fernet.js';
import { startGateway } from '../../helpers/gateway.js';
import { GATEWAY_KINDS, goneOffline, type GatewayUnderTest } from '../../helpers/kinds.js';
import { BrowserKeys } from '../../helpers/browser-keys.js';
import { channelId, post, sendWebPush } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

/** A key whose standard-base64 spelling uses `+` or `/`, so the standard alphabet path is exercised. */
function keysWithStandardOnlyCharacters(): { publicKey: string; privateKey: string } {
  for (;;) {
    const keys = webpush.generateVAPIDKeys();
    if (/[+/]/.test(Buffer.from(keys.publicKey, 'base64url').toString('base64'))) return keys;
  }
}
const vapidKeys = keysWithStandardOnlyCharacters();
const vapidDetails = { subject: 'mailto:ops@example.com', publicKey: vapidKeys.publicKey, privateKey: vapidKeys.privateKey };

function python(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' }).trim();
}

/** A VAPID JWT with chosen claims; the key is written as the test asks (standard base64, padding). */
async function vapidJwt(claims: Record<string, unknown>): Promise<string> {
  const pub = Buffer.from(vapidKeys.publicKey, 'base64url');
  const jwk = { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url'), d: vapidKeys.privateKey };
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(await importJWK(jwk, 'ES256'));
}

// Against each gateway of GATEWAY_KINDS: what a sender sees does not depend on which process answers it.
describe.each(GATEWAY_KINDS)('push endpoint: autopush-rs 1.83 behaviour ($name)', (kind) => {
  let gw: GatewayUnderTest;
  let client: PushClient;
  let uaid: string;
  const browser = new BrowserKeys();
  let v1: string;
  let v2: string;
  let chid1: string;
  let gone: string;
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    gw = await kind.start();
    client = await PushClient.connect(gw.wsUrl);
    uaid = await client.hello();
    chid1 = channelId();
    v1 = (await client.register(chid1))['pushEndpoint'] as string;
    v2 = (await client.register(channelId(), vapidKeys.publicKey))['pushEndpoint'] as string;
    // An endpoint whose channel was unregistered: a live token for a dead subscription.
    const deadChid = channelId();
    gone = (await client.register(deadChid))['pushEndpoint'] as string;
    client.send({ messageType: 'unregister', channelID: deadChid });
    expect(await client.next()).toMatchObject({ messageType: 'unregister', status: 200 });
    await gw.settled();
  });
  afterAll(async () => {
    client.close();
    await gw.close();
  });

  const receive = () => client.receiveAndAck();

  describe('body size', () => {
    it('delivers a 5,600-byte body intact to the websocket client', async () => {
      const body = randomBytes(5600);
      const res = await post(v1, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, body);
      expect(res.status).toBe(201);
      const n = await receive();
      expect(Buffer.from(n['data'] as string, 'base64url').equals(body)).toBe(true);
    });

    it('delivers a web-push message of 5,000 characters, which the browser decrypts', async () => {
      const text = 'x'.repeat(5000);
      const res = await sendWebPush(browser.subscription(v2), text, { vapidDetails });
      expect(res.status).toBe(201);
      expect(browser.decrypt(await receive())).toBe(text);
    });

    it('accepts exactly 5,630 bytes and refuses 5,631 with 413 errno 104', async () => {
      expect((await post(v1, { TTL: '0', 'Content-Encoding': 'aes128gcm' }, Buffer.alloc(5630))).status).toBe(201);
      await receive();
      const res = await post(v1, { TTL: '0', 'Content-Encoding': 'aes128gcm' }, Buffer.alloc(5631));
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ code: 413, errno: 104 });
    });
  });

  describe('check order: token, VAPID, subscription, body size, headers', () => {
    const big = Buffer.alloc(6000);
    const cases: [string, () => Promise<Response>, number, number][] = [
      ['bad token beats bad VAPID', () => post(v1.replace(/\/[^/]+$/, '/AAAA'), { TTL: '60', authorization: 'Basic x' }), 404, 102],
      ['bad VAPID beats a token of the wrong length for its path', () => post(v2.replace('/v2/', '/v1/'), { TTL: '60', authorization: 'Basic x' }), 401, 109],
      ['bad VAPID beats a dead subscription', () => post(gone, { TTL: '60', authorization: 'Basic x' }), 401, 109],
      ['dead subscription beats an oversized body', () => post(gone, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, big), 410, 106],
      ['dead subscription beats a missing TTL', () => post(gone, {}), 410, 106],
      ['oversized body beats bad headers', () => post(v1, { TTL: 'never' }, big), 413, 104],
      ['missing TTL beats a bad Topic', () => post(v1, { Topic: 'x'.repeat(40) }), 400, 111],
      ['crypto headers beat a negative TTL', () => post(v1, { TTL: '-1' }, 'abc'), 400, 110],
    ];
    it.each(cases)('%s', async (_name, send, status, errno) => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ code: status, errno });
      expect(client.idle).toBe(true);
    });
  });

  describe('headers autopush accepts', () => {
    it('accepts TTL "+60" as autopush (Rust i64 parsing) and answers TTL 60', async () => {
      const res = await post(v1, { TTL: '+60' });
      expect(res.status).toBe(201);
      expect(res.headers.get('ttl')).toBe('60');
      expect(await receive()).toMatchObject({ ttl: 60 });
    });

    it('accepts a Topic with trailing "=" padding', async () => {
      const res = await post(v1, { TTL: '60', Topic: 'dGVzdA==' });
      expect(res.status).toBe(201);
      expect(await receive()).toMatchObject({ channelID: chid1 });
    });

    it('treats an unknown Urgency as normal and counts it', async () => {
      const before = await gw.metric('pushgate_endpoint_unknown_urgency_total');
      const res = await post(v1, { TTL: '60', Urgency: 'urgent' });
      expect(res.status).toBe(201);
      const n = await receive();
      expect(n['headers']).toBeUndefined();
      expect(await gw.metric('pushgate_endpoint_unknown_urgency_total')).toBe(before + 1);
    });

    it('accepts aesgcm without Crypto-Key, and ignores Encryption-Key, as autopush', async () => {
      const res = await post(v1, { TTL: '60', 'Content-Encoding': 'aesgcm', Encryption: 'salt="c2FsdA=="', 'Encryption-Key': 'dh=abc' }, 'abc');
      expect(res.status).toBe(201);
      const n = await receive();
      expect(n['headers']).toEqual({ encoding: 'aesgcm', encryption: 'salt=c2FsdA' });
    });
  });

  describe('VAPID', () => {
    it.each([
      ['without sub', {}, 'missing'],
      ['with an http: sub', { sub: 'http://example.com' }, 'bad_format'],
    ])('accepts a token %s and counts it', async (_name, extra, problem) => {
      const before = await gw.metric('pushgate_vapid_sub_problems_total', `problem="${problem}"`);
      const jwt = await vapidJwt({ aud: new URL(gw.url).origin, exp: now() + 600, ...extra });
      const res = await post(v2, { TTL: '60', authorization: `vapid t=${jwt}, k=${vapidKeys.publicKey}` });
      expect(res.status).toBe(201);
      await receive();
      expect(await gw.metric('pushgate_vapid_sub_problems_total', `problem="${problem}"`)).toBe(before + 1);
    });

    it('accepts the key in standard base64 with padding, in k= and in p256ecdsa=', async () => {
      const std = Buffer.from(vapidKeys.publicKey, 'base64url').toString('base64');
      expect(std).toMatch(/[+/].*=$/);
      const jwt = await vapidJwt({ aud: new URL(gw.url).origin, exp: now() + 600, sub: 'mailto:a@example.com' });
      expect((await post(v2, { TTL: '60', authorization: `vapid t=${jwt}, k=${std}` })).status).toBe(201);
      await receive();
      expect((await post(v2, { TTL: '60', authorization: `WebPush ${jwt}`, 'Crypto-Key': `p256ecdsa=${vapidKeys.publicKey}=` })).status).toBe(201);
      await receive();
    });

    it('counts every refused VAPID credential with door "vapid" and autopush\'s reason label', async () => {
      const before = await gw.metric('pushgate_auth_failures_total', 'door="vapid"');
      const mismatch = await vapidJwt({ aud: 'https://elsewhere.example', exp: now() + 600 });
      expect((await post(v2, { TTL: '60', authorization: `vapid t=${mismatch}, k=${vapidKeys.publicKey}` })).status).toBe(401);
      expect((await post(v2, { TTL: '60' })).status).toBe(401);
      expect(await gw.metric('pushgate_auth_failures_total', 'door="vapid",reason="invalid_audience"')).toBeGreaterThanOrEqual(1);
      expect(await gw.metric('pushgate_auth_failures_total', 'door="vapid"')).toBe(before + 2);
    });
  });

  describe('CORS as actix-cors in autopush', () => {
    it('answers a preflight for a push from a web page', async () => {
      const res = await fetch(v1, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'ttl, content-encoding, authorization',
        },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(res.headers.get('access-control-allow-methods')).toBe('DELETE, GET, POST, PUT');
      expect(res.headers.get('access-control-allow-headers')).toBe('ttl, content-encoding, authorization');
      expect(res.headers.get('access-control-max-age')).toBe('3600');
    });

    it('refuses a preflight for a method autopush does not allow', async () => {
      const res = await fetch(v1, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'PATCH' } });
      expect(res.status).toBe(400);
    });

    it('lets the page read the answer, success and error alike', async () => {
      const ok = await post(v1, { TTL: '60', origin: 'https://app.example' });
      expect(ok.status).toBe(201);
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
      await receive();
      const bad = await post(v1, { origin: 'https://app.example' });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('access-control-allow-origin')).toBe('https://app.example');
    });
  });

  describe('message ids in autopush format', () => {
    const PY_DECRYPT = `
import sys
from cryptography.fernet import Fernet
print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())
`;
    const PY_ENCRYPT = `
import sys
from cryptography.fernet import Fernet
print(Fernet(sys.argv[1].encode()).encrypt(sys.argv[2].encode()).decode())
`;
    const key = () => gw.config.cryptoKey.split(',')[0]!;

    it('issues ids that decrypt, padded as the fernet crate writes them, to "02:uaid:chid:n" and "01:uaid:chid:topic"', async () => {
      // Offline from here on: the pushes below are stored.
      await goneOffline(gw, client, uaid);
      const plain = await post(v1, { TTL: '600' });
      const topical = await post(v1, { TTL: '600', Topic: 'weather' });
      const ids = [plain, topical].map((r) => r.headers.get('location')!.split('/m/')[1]!);
      for (const id of ids) expect(id.length % 4).toBe(0);
      const simple = chid1.replaceAll('-', '');
      expect(python(PY_DECRYPT, key(), ids[0]!)).toMatch(new RegExp(`^02:${uaid}:${simple}:\\d+$`));
      expect(python(PY_DECRYPT, key(), ids[1]!)).toBe(`01:${uaid}:${simple}:weather`);
      // DELETE with the ids removes both stored messages.
      expect(await gw.store.fetchMessages(uaid, 0, 10, Date.now())).toHaveLength(2);
      for (const id of ids) expect((await fetch(`${gw.url}/m/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await gw.store.fetchMessages(uaid, 0, 10, Date.now())).toHaveLength(0);
    });

    it('accepts an id made as autopush makes it (topic kind), deleting the stored message', async () => {
      expect((await post(v1, { TTL: '600', Topic: 'news' })).status).toBe(201);
      expect(await gw.store.fetchMessages(uaid, 0, 10, Date.now())).toHaveLength(1);
      const id = python(PY_ENCRYPT, key(), `01:${uaid}:${chid1.replaceAll('-', '')}:news`);
      expect((await fetch(`${gw.url}/m/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await gw.store.fetchMessages(uaid, 0, 10, Date.now())).toHaveLength(0);
    });

    it('accepts an autopush non-topic id (millisecond timestamp) issued before a migration', async () => {
      const id = python(PY_ENCRYPT, key(), `02:${uaid}:${chid1.replaceAll('-', '')}:${Date.now()}`);
      expect((await fetch(`${gw.url}/m/${id}`, { method: 'DELETE' })).status).toBe(204);
    });
  });
});

describe('key lists in autopush form', () => {
  it('reads PUSHGATE_CRYPTO_KEY as [k1,k2] (quotes and spaces dropped), the first encrypting', () => {
    const [k1, k2] = [FernetKey.generate(), FernetKey.generate()];
    const list = MultiFernet.parseList(`["${k1}", "${k2}"]`);
    expect(list.keys).toHaveLength(2);
    const token = list.encrypt(Buffer.from('x'));
    expect(new MultiFernet([k1]).decrypt(token)?.toString()).toBe('x');
    expect(list.decrypt(new MultiFernet([k2]).encrypt(Buffer.from('y')))?.toString()).toBe('y');
  });

  it('starts a gateway with bracketed crypto and auth keys', async () => {
    const k = FernetKey.generate();
    const gw = await startGateway({ cryptoKey: `[${k}]`, authKeys: '[0123456789abcdef0123,fedcba9876543210fedc]' });
    try {
      expect(gw.config.authKeyList).toEqual(['0123456789abcdef0123', 'fedcba9876543210fedc']);
      expect(gw.config.fernet.keys).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });
});
