// The push route's fast path on the raw request (src/webpush/endpoint/fast-path.ts): which requests it takes and
// which it leaves to fastify unread, and that its answers are the route's, header for header and byte for byte.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { type FastPushCore, fastPushHandler } from '../../../src/webpush/endpoint/fast-path.js';
import type { Checked } from '../../../src/webpush/endpoint/routes.js';
import { ApiError } from '../../../src/webpush/protocol/errors.js';
import { type TestGateway, startGateway } from '../../helpers/gateway.js';
import { channelId } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A raw HTTP/1.1 request, so that every header (and a chunked body) is exactly what the test says. */
function request(url: string, method: string, headers: Record<string, string>, body: Buffer | Buffer[] | null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (Array.isArray(body)) for (const b of body) req.write(b);
    req.end(Array.isArray(body) ? undefined : (body ?? undefined));
  });
}

/** The answer without what differs by gateway or moment: the date, and the message id (its origin and path kept). */
const comparableAnswer = (a: Answer, gw: TestGateway) => ({
  status: a.status,
  headers: Object.fromEntries(
    Object.entries(a.headers)
      .filter(([k]) => k !== 'date')
      .map(([k, v]) => [
        k,
        k === 'location'
          ? String(v)
              .replace(`${gw.url}/m/`, '<origin>/m/')
              .replace(/m\/[A-Za-z0-9_=-]+$/, 'm/<id>')
          : v,
      ]),
  ),
  body: a.body,
});

describe('the fast path decides before the body', () => {
  const declined: string[] = [];
  let closing = false;
  let acceptWith: () => Promise<string> = async () => 'MID';
  const answered: number[] = [];
  let credentialChecks = 0;
  const checked = { info: { uaid: 'u', channelID: 'c' }, keyHash: undefined } as unknown as Checked;
  const core: FastPushCore = {
    maxDataBytes: 10,
    publicUrl: 'https://push.example',
    closing: () => closing,
    credentials: (_v, token, authorization) => {
      credentialChecks++;
      return authorization === 'vapid t=ok, k=key' && token !== 'unknown' ? checked : null;
    },
    accept: () => acceptWith(),
    refused: (err) => err as ApiError,
    answered: (status) => void answered.push(status),
  };
  const handler = fastPushHandler(core);
  const server = http.createServer((req, res) => {
    if (handler(req, res)) return;
    declined.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(599).end());
  });
  let base: string;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const ok = { authorization: 'vapid t=ok, k=key', ttl: '60', 'content-encoding': 'aes128gcm' };

  it("takes a verified sender's push and answers the route's 201", async () => {
    const a = await request(`${base}/wpush/v2/tok`, 'POST', ok, Buffer.from('body'));
    expect(a.status).toBe(201);
    expect(a.headers).toMatchObject({ location: 'https://push.example/m/MID', ttl: '60', 'content-length': '0' });
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
    const cors = await request(`${base}/wpush/v1/tok`, 'POST', { ...ok, ttl: '0', origin: 'https://app.example' }, null);
    expect(cors.headers).toMatchObject({
      ttl: '0',
      'access-control-allow-origin': 'https://app.example',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    expect(answered.splice(0)).toEqual([201, 201]);
    expect(declined).toEqual([]);
  });

  it('answers a refusal after the body with the error body', async () => {
    acceptWith = () => Promise.reject(new ApiError('invalidSubscription', 'No such subscription'));
    const a = await request(`${base}/wpush/v1/tok`, 'POST', ok, Buffer.from('body'));
    acceptWith = async () => 'MID';
    expect(a.status).toBe(410);
    expect(a.headers).toMatchObject({ 'cache-control': 'max-age=86400', 'content-type': 'application/json; charset=utf-8' });
    expect(JSON.parse(a.body)).toMatchObject({ code: 410, errno: 106 });
    expect(answered.splice(0)).toEqual([410]);
  });

  it('leaves every other request to fastify, unread', async () => {
    const cases: [string, string, Record<string, string>, Buffer | Buffer[] | null][] = [
      ['GET', '/wpush/v1/tok', ok, null],
      ['POST', '/wpush/v3/tok', ok, null],
      ['POST', '/wpush/tok', ok, null],
      ['POST', '/wpush/v1/tok?x=1', ok, null],
      ['POST', '/wpush/v1/to%6B', ok, null],
      ['POST', '/wpush/v1/tok/', ok, null],
      ['POST', '/wpush/v1/unknown', ok, null],
      ['POST', '/wpush/v1/tok', { ttl: '60' }, null],
      ['POST', '/wpush/v1/tok', { ...ok, authorization: 'vapid t=other, k=key' }, null],
      // Over maxDataBytes (413 is the route's, after its subscription check), chunked, or waiting for 100-continue.
      ['POST', '/wpush/v1/tok', ok, Buffer.alloc(11)],
      ['POST', '/wpush/v1/tok', { ...ok, 'transfer-encoding': 'chunked' }, [Buffer.from('a'), Buffer.from('b')]],
      ['POST', '/wpush/v1/tok', { ...ok, expect: '100-continue' }, null],
      // Header faults are the route's to answer (after the subscription check, with autopush's errno).
      ['POST', '/wpush/v1/tok', { ...ok, ttl: 'soon' }, null],
      ['POST', '/wpush/v1/tok', { authorization: ok.authorization }, null],
      ['POST', '/wpush/v1/tok', { ...ok, 'content-encoding': 'gzip' }, Buffer.from('x')],
    ];
    for (const [method, path, headers, body] of cases) {
      declined.length = 0;
      const a = await request(`${base}${path}`, method, headers, body);
      expect([a.status, declined], `${method} ${path} ${JSON.stringify(headers)}`).toEqual([599, [`${method} ${path}`]]);
    }
    // The credential check comes last, since the real one counts what it accepts: a header fault never reaches it.
    credentialChecks = 0;
    for (const headers of [{ ...ok, ttl: 'soon' }, { authorization: ok.authorization }, { ...ok, 'content-encoding': 'gzip' }]) {
      await request(`${base}/wpush/v1/tok`, 'POST', headers, Buffer.from('x'));
    }
    expect(credentialChecks).toBe(0);
    closing = true;
    declined.length = 0;
    expect((await request(`${base}/wpush/v1/tok`, 'POST', ok, null)).status).toBe(599);
    closing = false;
    expect(answered).toEqual([]);
  });
});

/**
 * Two gateways alike but for the fast path (off on the second): the same requests get the same answers. A sender's
 * first push verifies its VAPID token through the route; every later one with the same header can take the fast path.
 */
describe('the fast path answers as the route does', () => {
  const gateways: TestGateway[] = [];
  const keys = webpush.generateVAPIDKeys();
  const subs: { client: PushClient; chid: string; endpoint: string }[] = [];

  beforeAll(async () => {
    gateways.push(await startGateway({ maxDataBytes: 64 }), await startGateway({ maxDataBytes: 64 }, { fastPath: false }));
    for (const gw of gateways) {
      const client = await PushClient.connect(gw.wsUrl);
      await client.hello();
      const chid = channelId();
      const reg = await client.register(chid, keys.publicKey);
      subs.push({ client, chid, endpoint: reg['pushEndpoint'] as string });
    }
  });
  afterAll(async () => {
    for (const s of subs) s.client.close();
    for (const gw of gateways) await gw.close();
  });

  it('for pushes taken, refusals after the body, and requests it leaves to the route', async () => {
    const vapid = (gw: TestGateway) =>
      webpush.getVapidHeaders(gw.config.publicUrl, 'mailto:ops@example.com', keys.publicKey, keys.privateKey, 'aes128gcm').Authorization;
    const auths = gateways.map(vapid);
    const body = Buffer.alloc(40, 7);
    const cases: { name: string; path?: string; headers: Record<string, string>; body: Buffer | null; unsubscribeFirst?: boolean }[] = [
      { name: 'first push (VAPID verified by the route)', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body },
      { name: 'a repeat', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body },
      { name: 'TTL 0, topic, urgency', headers: { ttl: '0', topic: 'news', urgency: 'high', 'content-encoding': 'aes128gcm' }, body },
      { name: 'no body', headers: { ttl: '30' }, body: null },
      { name: 'cross-origin', headers: { ttl: '60', 'content-encoding': 'aes128gcm', origin: 'https://app.example' }, body },
      { name: 'unknown urgency', headers: { ttl: '60', urgency: 'whenever', 'content-encoding': 'aes128gcm' }, body },
      { name: 'body over the limit', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: Buffer.alloc(65) },
      { name: 'no TTL', headers: { 'content-encoding': 'aes128gcm' }, body },
      { name: 'legacy aesgcm without its keys', headers: { ttl: '60', 'content-encoding': 'aesgcm' }, body },
      { name: 'a query string', path: '?x=1', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body },
      { name: 'gone subscription', headers: { ttl: '60', 'content-encoding': 'aes128gcm', origin: 'https://app.example' }, body, unsubscribeFirst: true },
    ];
    for (const c of cases) {
      const answers: ReturnType<typeof comparableAnswer>[] = [];
      for (const [i, gw] of gateways.entries()) {
        const sub = subs[i]!;
        if (c.unsubscribeFirst) {
          sub.client.send({ messageType: 'unregister', channelID: sub.chid });
          expect(await sub.client.next()).toMatchObject({ messageType: 'unregister', status: 200 });
        }
        const a = await request(sub.endpoint + (c.path ?? ''), 'POST', { authorization: auths[i]!, ...c.headers }, c.body);
        if (a.status === 201) {
          const n = await sub.client.next();
          sub.client.ack(sub.chid, n['version'] as string);
        }
        answers.push(comparableAnswer(a, gw));
      }
      expect(answers[0], c.name).toEqual(answers[1]);
    }
  });
});

/**
 * The same comparison over generated requests (fast-check): every mix of the headers the route reads, right and
 * wrong, with each kind of Authorization and body size. The two gateways must give the same answer, and when both
 * take the push, the same notification frame (all but its message id). A counterexample is shrunk to the smallest
 * request that tells them apart, and the run prints its seed.
 */
describe('the fast path answers as the route does, for generated requests', () => {
  const gateways: TestGateway[] = [];
  const clients: PushClient[] = [];
  const keys = webpush.generateVAPIDKeys();
  /** Each gateway's first VAPID header, verified by its route once: the one a repeat sender reuses. */
  const verified: string[] = [];
  const vapid = (gw: TestGateway) =>
    webpush.getVapidHeaders(gw.config.publicUrl, 'mailto:ops@example.com', keys.publicKey, keys.privateKey, 'aes128gcm').Authorization;

  beforeAll(async () => {
    // A TTL > 0 push is saved before its 201 unless its ack comes within the ack wait (README "Durability"); these
    // clients ack after the answer, so each such push would wait out the 100 ms. Saved at once instead, the same on both.
    const config = { maxDataBytes: 64, ackWaitMs: 0 };
    gateways.push(await startGateway(config), await startGateway(config, { fastPath: false }));
    for (const gw of gateways) {
      const client = await PushClient.connect(gw.wsUrl);
      await client.hello();
      clients.push(client);
      const auth = vapid(gw);
      const chid = channelId();
      const reg = await client.register(chid, keys.publicKey);
      const first = await request(reg['pushEndpoint'] as string, 'POST', { authorization: auth, ttl: '60' }, null);
      expect(first.status).toBe(201);
      await client.receiveAndAck();
      verified.push(auth);
    }
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const gw of gateways) await gw.close();
  });

  /**
   * A header that is mostly absent or right (so that many pushes are taken, and by the fast path) and now and then
   * wrong, or present where it has no business.
   */
  const header = <T>(right: readonly T[], wrong: readonly T[]): fc.Arbitrary<T> =>
    fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...right) }, { weight: 1, arbitrary: fc.constantFrom(...wrong) });
  const push = fc.record({
    keyed: fc.boolean(),
    suffix: header([''], ['?x=1', '/']),
    auth: header(['verified'], ['fresh', 'recased', 'none', 'garbage', 'webpush']),
    ttl: header(['0', '60', '2592001', '99999999999999999999', '+60', '060'], ['-1', 'soon', '', '1.5', undefined]),
    topic: header([undefined, 'news', 'a'.repeat(32), 'ab=='], ['a'.repeat(33), 'bad topic', '', 'a/b']),
    urgency: header([undefined, 'high', 'very-low', 'HIGH', ' low '], ['whenever', '']),
    encoding: header(['aes128gcm', 'aes128gcm', 'aesgcm'], ['AES128GCM', 'gzip', '', 'aes128gcm, gzip', undefined]),
    encryption: header([undefined, 'salt=abc', 'salt="abc"'], ['keyid=x', 'salt=', 'x'.repeat(600)]),
    cryptoKey: header([undefined, 'dh=abc', 'dh=abc;p256ecdsa=xyz', 'keyid=p256dh;dh=abc'], ['junk', `dh=${'y'.repeat(600)}`]),
    contentType: header([undefined, 'application/octet-stream'], ['application/json', 'text/plain', 'multipart/form-data; boundary=x']),
    origin: fc.constantFrom(undefined, 'https://app.example'),
    body: header([null, 40, 64], [0, 1, 65]),
  });
  type Push = typeof push extends fc.Arbitrary<infer T> ? T : never;

  const headersFor = (p: Push, i: number): Record<string, string> => {
    const gw = gateways[i]!;
    const authorization = {
      verified: verified[i],
      fresh: vapid(gw),
      recased: verified[i]!.replace(/^vapid/, 'Vapid'),
      none: undefined,
      garbage: 'vapid t=abc, k=def',
      webpush: `WebPush ${vapid(gw).slice('vapid t='.length).split(',')[0]}`,
    }[p.auth];
    const named: Record<string, string | undefined> = {
      authorization,
      ttl: p.ttl,
      topic: p.topic,
      urgency: p.urgency,
      'content-encoding': p.encoding,
      encryption: p.encryption,
      'crypto-key': p.cryptoKey,
      'content-type': p.contentType,
      origin: p.origin,
    };
    return Object.fromEntries(Object.entries(named).filter((e): e is [string, string] => e[1] !== undefined));
  };

  it('gives the same answer and the same notification', async () => {
    // How many generated pushes both took: the property says little unless many are.
    let taken = 0;
    const numRuns = 400;
    await fc.assert(
      fc.asyncProperty(push, async (p) => {
        const chid = channelId();
        const answers: ReturnType<typeof comparableAnswer>[] = [];
        const frames: Record<string, unknown>[] = [];
        for (const [i, gw] of gateways.entries()) {
          const client = clients[i]!;
          const reg = await client.register(chid, p.keyed ? keys.publicKey : undefined);
          const body = p.body === null ? null : Buffer.alloc(p.body, 7);
          const a = await request(`${reg['pushEndpoint'] as string}${p.suffix}`, 'POST', headersFor(p, i), body);
          answers.push(comparableAnswer(a, gw));
          if (a.status === 201) {
            const { version: _, ...frame } = await client.receiveAndAck();
            frames.push(frame);
          }
          client.send({ messageType: 'unregister', channelID: chid });
          expect(await client.next()).toMatchObject({ messageType: 'unregister', status: 200 });
          expect(client.idle).toBe(true);
        }
        expect(answers[0]).toEqual(answers[1]);
        expect(frames[0]).toEqual(frames[1]);
        if (frames.length === 2) taken++;
      }),
      { numRuns },
    );
    expect(taken).toBeGreaterThan(numRuns / 8);
  });
});
