import { SignJWT, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { MAX_TTL } from '../../../src/webpush/endpoint/headers.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { GATEWAY_KINDS, ONE_PROCESS, type GatewayUnderTest, underTest } from '../../helpers/kinds.js';
import { BrowserKeys } from '../../helpers/browser-keys.js';
import { channelId, post, sendWebPush } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

const vapidKeys = webpush.generateVAPIDKeys();
const vapidDetails = { subject: 'mailto:ops@example.com', publicKey: vapidKeys.publicKey, privateKey: vapidKeys.privateKey };
const otherKeys = webpush.generateVAPIDKeys();

/** A VAPID JWT with chosen claims, signed with a fresh or given P-256 key. */
async function vapidHeader(claims: Record<string, unknown>, keys = vapidKeys): Promise<string> {
  const pub = Buffer.from(keys.publicKey, 'base64url');
  const jwk = { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url'), d: keys.privateKey };
  const key = await importJWK(jwk, 'ES256');
  const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(key);
  return `vapid t=${jwt}, k=${keys.publicKey}`;
}

// Against each gateway of GATEWAY_KINDS: a POST lands on any worker or on the endpoint node, wherever the client is.
describe.each(GATEWAY_KINDS)('endpoint door: RFC 8030 push with the real web-push library ($name)', (kind) => {
  let gw: GatewayUnderTest;
  /** The gateway itself, when it runs in this process. */
  let inProcess: TestGateway | null = null;
  let client: PushClient;
  let uaid: string;
  const browser = new BrowserKeys();
  let v1: string;
  let v2: string;
  let v1Chid: string;
  let v2Chid: string;

  beforeAll(async () => {
    if (kind === ONE_PROCESS) {
      inProcess = await startGateway();
      gw = underTest(inProcess);
    } else {
      gw = await kind.start();
    }
    client = await PushClient.connect(gw.wsUrl);
    uaid = await client.hello();
    v1Chid = channelId();
    v2Chid = channelId();
    v1 = (await client.register(v1Chid))['pushEndpoint'] as string;
    v2 = (await client.register(v2Chid, vapidKeys.publicKey))['pushEndpoint'] as string;
    await gw.settled();
  });
  afterAll(async () => {
    client.close();
    await gw.close();
  });

  const receive = () => client.receiveAndAck();

  it('delivers an aes128gcm message with VAPID to a connected client, who decrypts the exact text', async () => {
    const text = 'hello from an application server ✓';
    const res = await sendWebPush(browser.subscription(v2), text, { vapidDetails, TTL: 120, topic: undefined });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${gw.config.publicUrl}/m/[A-Za-z0-9_-]+$`));
    expect(res.headers.get('ttl')).toBe('120');
    const n = await receive();
    expect(n).toMatchObject({ channelID: v2Chid, ttl: 120, headers: { encoding: 'aes128gcm' } });
    expect(typeof n['version']).toBe('string');
    expect(browser.decrypt(n)).toBe(text);
  });

  it('delivers a legacy aesgcm message (WebPush + Crypto-Key p256ecdsa form of VAPID)', async () => {
    const text = 'legacy encoding';
    const res = await sendWebPush(browser.subscription(v2), text, { vapidDetails, contentEncoding: 'aesgcm' });
    expect(res.status).toBe(201);
    const n = await receive();
    const headers = n['headers'] as Record<string, string>;
    expect(headers['encoding']).toBe('aesgcm');
    expect(headers['encryption']).toMatch(/^salt=[A-Za-z0-9_-]+$/);
    expect(headers['crypto_key']).toMatch(/dh=[A-Za-z0-9_-]+/);
    expect(browser.decrypt(n)).toBe(text);
  });

  it('delivers to a v1 endpoint without VAPID, and a push without data', async () => {
    const res = await sendWebPush(browser.subscription(v1), 'no vapid needed');
    expect(res.status).toBe(201);
    expect(browser.decrypt(await receive())).toBe('no vapid needed');
    const empty = await post(v1, { TTL: '30' });
    expect(empty.status).toBe(201);
    const n = await receive();
    expect(n).toEqual({ messageType: 'notification', channelID: v1Chid, version: expect.any(String), ttl: 30 });
  });

  it('passes a non-default Urgency on in the notification headers', async () => {
    const res = await sendWebPush(browser.subscription(v1), 'urgent', { urgency: 'high' });
    expect(res.status).toBe(201);
    const n = await receive();
    expect(n['headers']).toEqual({ encoding: 'aes128gcm', urgency: 'high' });
    expect(browser.decrypt(n)).toBe('urgent');
  });

  it('caps the TTL at 30 days and says so', async () => {
    const res = await post(v1, { TTL: String(MAX_TTL * 4) });
    expect(res.status).toBe(201);
    expect(res.headers.get('ttl')).toBe(String(MAX_TTL));
    expect((await receive())['ttl']).toBe(MAX_TTL);
  });

  it('accepts the legacy Bearer form with Crypto-Key p256ecdsa (and extra Crypto-Key parameters)', async () => {
    const header = await vapidHeader({ aud: gw.config.publicUrl, exp: Math.floor(Date.now() / 1000) + 600, sub: 'https://sender.example' });
    const jwt = /t=([^,]+)/.exec(header)![1]!;
    const res = await post(v2, { TTL: '10', authorization: `Bearer ${jwt}`, 'crypto-key': `keyid=p256dh;p256ecdsa=${vapidKeys.publicKey}` });
    expect(res.status).toBe(201);
    await receive();
  });

  // The cache's counters are read in process (each worker keeps its own cache).
  if (kind === ONE_PROCESS)
    it('verifies a reused VAPID token once (cache)', async () => {
      const gw = inProcess!;
      const auth = await vapidHeader({ aud: gw.config.publicUrl, exp: Math.floor(Date.now() / 1000) + 3600, sub: 'mailto:a@example.com' });
      const misses = gw.vapid.misses;
      const hits = gw.vapid.hits;
      for (let i = 0; i < 3; i++) {
        expect((await post(v2, { TTL: '10', authorization: auth })).status).toBe(201);
        await receive();
      }
      expect(gw.vapid.misses - misses).toBe(1);
      expect(gw.vapid.hits - hits).toBe(2);
    });

  describe('errors: status, errno and JSON body', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: [string, () => Promise<Response>, number, number][] = [
      ['an invalid token', () => post(v1.replace(/\/[^/]+$/, '/notatoken'), { TTL: '60' }), 404, 102],
      ['an altered token', () => post(v1.slice(0, -4) + (v1.endsWith('AAAA') ? 'BBBB' : 'AAAA'), { TTL: '60' }), 404, 102],
      ['an unknown API version', () => post(v1.replace('/v1/', '/v3/'), { TTL: '60' }), 404, 102],
      ['a v2 token on the v1 path', () => post(v2.replace('/v2/', '/v1/'), { TTL: '60' }), 404, 102],
      ['a missing TTL', () => post(v1, {}), 400, 111],
      ['a malformed TTL (autopush: "Missing TTL value")', () => post(v1, { TTL: 'soon' }), 400, 111],
      ['a TTL beyond i64', () => post(v1, { TTL: '99999999999999999999' }), 400, 111],
      ['a negative TTL (autopush validator code 114)', () => post(v1, { TTL: '-5' }), 400, 114],
      ['a too long Topic', () => post(v1, { TTL: '60', Topic: 'x'.repeat(33) }), 400, 113],
      ['a Topic outside base64url', () => post(v1, { TTL: '60', Topic: 'no spaces' }), 400, 113],
      ['a body without Content-Encoding', () => post(v1, { TTL: '60' }, 'abc'), 400, 110],
      ['an unknown Content-Encoding', () => post(v1, { TTL: '60', 'Content-Encoding': 'gzip' }, 'abc'), 400, 110],
      ['aesgcm without Encryption salt', () => post(v1, { TTL: '60', 'Content-Encoding': 'aesgcm', 'Crypto-Key': 'dh=abc' }, 'abc'), 400, 110],
      [
        'aesgcm with a Crypto-Key without dh',
        () => post(v1, { TTL: '60', 'Content-Encoding': 'aesgcm', Encryption: 'salt=abc', 'Crypto-Key': 'keyid=p256dh' }, 'abc'),
        400,
        110,
      ],
      [
        'an aesgcm Encryption header over 512 bytes',
        () => post(v1, { TTL: '60', 'Content-Encoding': 'aesgcm', Encryption: `salt=${'a'.repeat(600)}` }, 'abc'),
        400,
        110,
      ],
      ['an upper-case Content-Encoding (autopush compares exactly)', () => post(v1, { TTL: '60', 'Content-Encoding': 'AES128GCM' }, 'abc'), 400, 110],
      ['aes128gcm with a salt header', () => post(v1, { TTL: '60', 'Content-Encoding': 'aes128gcm', Encryption: 'salt=abc' }, 'abc'), 400, 110],
      ['a body over 5630 bytes', () => post(v1, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, Buffer.alloc(5631)), 413, 104],
      ['a v2 endpoint without VAPID', () => post(v2, { TTL: '60' }), 401, 109],
      [
        'a v2 endpoint with another key',
        async () => post(v2, { TTL: '60', authorization: await vapidHeader({ aud: gw.config.publicUrl, exp: now() + 600 }, otherKeys) }),
        401,
        109,
      ],
      [
        'a VAPID token for another audience',
        async () => post(v2, { TTL: '60', authorization: await vapidHeader({ aud: 'https://elsewhere.example', exp: now() + 600 }) }),
        401,
        109,
      ],
      [
        'an expired VAPID token',
        async () => post(v2, { TTL: '60', authorization: await vapidHeader({ aud: gw.config.publicUrl, exp: now() - 3600 }) }),
        401,
        109,
      ],
      [
        'a VAPID exp over 24 h ahead',
        async () => post(v2, { TTL: '60', authorization: await vapidHeader({ aud: gw.config.publicUrl, exp: now() + 2 * 86400 }) }),
        401,
        109,
      ],
      ['a VAPID token without exp', async () => post(v2, { TTL: '60', authorization: await vapidHeader({ aud: gw.config.publicUrl }) }), 401, 109],
      [
        'a VAPID signature by another key',
        async () => {
          const good = await vapidHeader({ aud: gw.config.publicUrl, exp: now() + 600 }, otherKeys);
          return post(v2, { TTL: '60', authorization: good.replace(otherKeys.publicKey, vapidKeys.publicKey) });
        },
        401,
        109,
      ],
      ['a malformed Authorization', () => post(v1, { TTL: '60', authorization: 'vapid nonsense' }), 401, 109],
      ['an unknown Authorization scheme', () => post(v1, { TTL: '60', authorization: 'Basic Zm9vOmJhcg==' }), 401, 109],
      ['the legacy WebPush scheme without Crypto-Key (autopush: 400 errno 110)', () => post(v1, { TTL: '60', authorization: 'WebPush abc.def.ghi' }), 400, 110],
      [
        'the legacy Bearer scheme without p256ecdsa (autopush: 400 errno 110)',
        () => post(v1, { TTL: '60', authorization: 'Bearer abc.def.ghi', 'Crypto-Key': 'dh=abc' }),
        400,
        110,
      ],
    ];
    it.each(cases)('%s', async (_name, send, status, errno) => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({ code: status, errno, error: expect.any(String), message: expect.any(String), more_info: expect.stringMatching(/^http/) });
      expect(client.idle).toBe(true);
    });

    it('answers 410 errno 106 for a uaid the store does not know (as autopush), with a day of caching', async () => {
      const other = await PushClient.connect(gw.wsUrl);
      const otherUaid = await other.hello();
      const endpoint = (await other.register(channelId()))['pushEndpoint'] as string;
      other.close();
      await other.closedWith;
      // Until its session is gone the gateway still holds the client, whose channels answer for it.
      await gw.quiet(1);
      await gw.store.removeUser(otherUaid);
      const res = await post(endpoint, { TTL: '60' });
      expect(res.status).toBe(410);
      expect(res.headers.get('cache-control')).toBe('max-age=86400');
      expect(await res.json()).toMatchObject({ errno: 106 });
    });

    it('answers unknown routes with 404 errno 102', async () => {
      const res = await fetch(`${gw.url}/nothing/here`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: 404, errno: 102 });
    });

    it('answers DELETE of an invalid message id with 400, as autopush', async () => {
      const res = await fetch(`${gw.url}/m/garbage`, { method: 'DELETE' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 400, message: 'Invalid message ID' });
    });
  });

  it('the client saw none of the refused messages', async () => {
    expect(uaid).toMatch(/^[0-9a-f]{32}$/);
    expect(client.idle).toBe(true);
  });
});
