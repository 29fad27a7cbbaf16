/**
 * The MongoosePush API's own listener: off by default, basic auth (constant-time, counted refusals), TLS,
 * the refusal to listen beyond loopback without a password, and the answers when a provider is unreachable or
 * slow. The attacks of issue 9 (the public port, guessed credentials, a full queue) are in test/security/bridge.test.ts.
 */
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { basicAuthOk } from '../../src/mongoosepush/server.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { freePort, startGateway } from '../helpers/gateway.js';
import { makePki, type TestPki } from '../fakes/pki.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';

const FCM = 'fcm-device-token-listener';
const silent = { service: 'fcm', data: { 'message-count': 1 } };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('the MongoosePush listener', () => {
  it('is off unless PUSHGATE_MONGOOSEPUSH_PORT is set', async () => {
    const gw = await startGateway();
    try {
      expect(gw.mongoosepush).toBeNull();
      expect((await post(gw.url, `/v3/notification/${FCM}`, silent)).status).toBe(404);
    } finally {
      await gw.close();
    }
  });

  it.each([
    ['0.0.0.0', {}, /PUSHGATE_MONGOOSEPUSH_HOST=0.0.0.0 is not a loopback address: set PUSHGATE_MONGOOSEPUSH_USER and PUSHGATE_MONGOOSEPUSH_PASSWORD/],
    ['10.0.0.5', {}, /PUSHGATE_MONGOOSEPUSH_USER and PUSHGATE_MONGOOSEPUSH_PASSWORD/],
    ['::', {}, /not a loopback address/],
    ['127.0.0.1', { PUSHGATE_MONGOOSEPUSH_USER: 'mim' }, /must be set together/],
    [
      '127.0.0.1',
      { PUSHGATE_MONGOOSEPUSH_USER: 'mim', PUSHGATE_MONGOOSEPUSH_PASSWORD: 'short' },
      /PUSHGATE_MONGOOSEPUSH_PASSWORD \(mongoosepushPassword\) is invalid: got \(not shown\)/,
    ],
    ['127.0.0.1', { PUSHGATE_PORT: '8090' }, /PUSHGATE_MONGOOSEPUSH_PORT is invalid: it must differ from PUSHGATE_PORT/],
    ['127.0.0.1', { PUSHGATE_MONGOOSEPUSH_TLS_CERT: '/etc/hostname' }, /PUSHGATE_MONGOOSEPUSH_TLS_CERT and PUSHGATE_MONGOOSEPUSH_TLS_KEY must be set together/],
  ])('refuses to start on %s without proper basic auth', (host, extra, message) => {
    const env = { PUSHGATE_MONGOOSEPUSH_PORT: '8090', PUSHGATE_MONGOOSEPUSH_HOST: host, ...extra };
    const load = () => loadConfig({ env, file: 'config/pushgate.json', overrides: { cryptoKey: FernetKey.generate() } });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it('compares basic credentials exactly', () => {
    expect(basicAuthOk(basic('mim', 'a-long-password'), 'mim', 'a-long-password')).toBe('ok');
    expect(basicAuthOk(basic('mim', 'a-long-passwor'), 'mim', 'a-long-password')).toBe('wrong');
    expect(basicAuthOk(basic('mim2', 'a-long-password'), 'mim', 'a-long-password')).toBe('wrong');
    expect(basicAuthOk('Bearer abc', 'mim', 'a-long-password')).toBe('malformed');
    expect(basicAuthOk(undefined, 'mim', 'a-long-password')).toBe('missing');
  });
});

describe('the MongoosePush listener with TLS and basic auth, on all interfaces', () => {
  let w: BridgeWorld;
  let port: number;
  let pki: TestPki;
  beforeAll(async () => {
    port = await freePort();
    pki = makePki();
    w = await bridgeWorld({
      mongoosepushPort: port,
      mongoosepushHost: '0.0.0.0',
      mongoosepushTlsCert: join(pki.dir, 'server.pem'),
      mongoosepushTlsKey: join(pki.dir, 'server.key'),
      mongoosepushUser: 'mongooseim',
      mongoosepushPassword: 'correct horse battery',
    });
  });
  afterAll(async () => {
    await w.close();
  });

  /** node:https with the test CA (the listener's certificate is the fakes' server certificate). */
  const tlsPost = (body: unknown, authorization?: string) =>
    new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: `/v3/notification/${FCM}`,
          method: 'POST',
          ca: pki.ca,
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  it('sends with the right credentials over TLS, and refuses (401, counted, nothing sent) without them', async () => {
    w.fakes.reset();
    const none = await tlsPost(silent);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="MongoosePush"/);
    expect((await tlsPost(silent, basic('mongooseim', 'wrong horse battery'))).status).toBe(401);
    expect((await tlsPost(silent, basic('attacker', 'correct horse battery'))).status).toBe(401);
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
    const metrics = await w.gw.metrics.registry.metrics();
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="mongoosepush",reason="missing"\} 1/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="mongoosepush",reason="wrong"\} 2/);
    expect(metrics).not.toContain('correct horse battery');
    const ok = await tlsPost(silent, basic('mongooseim', 'correct horse battery'));
    expect(ok.status).toBe(200);
    expect(w.fakes.for('fcm', FCM)).toHaveLength(1);
  });

  it('speaks HTTP/2 over TLS too, as MongoosePush does', async () => {
    w.fakes.reset();
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca: pki.ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': `/v3/notification/${FCM}`,
          'content-type': 'application/json',
          authorization: basic('mongooseim', 'correct horse battery'),
        });
        let got = 0;
        stream.on('response', (h) => (got = Number(h[':status'])));
        stream.on('end', () => resolve(got));
        stream.resume();
        stream.on('error', reject);
        stream.end(JSON.stringify(silent));
      });
      expect(status).toBe(200);
      expect(w.fakes.for('fcm', FCM)).toHaveLength(1);
    } finally {
      session.close();
    }
  });
});

describe('the MongoosePush answers when a provider is unreachable, slow or saturated', () => {
  let w: BridgeWorld;
  let base: string;
  beforeAll(async () => {
    const port = await freePort();
    w = await bridgeWorld({ mongoosepushPort: port, bridgeTimeout: 1, bridgeQueue: 2 });
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await w.close();
  });

  it('a provider that does not answer in time: v3 503 connection_lost, v2 500 connection_lost', async () => {
    // One slow reply per attempt (3 attempts).
    const slow = { status: 200, body: { name: 'late' }, delayMs: 1500 };
    w.fakes.script(FCM, slow, slow, slow);
    const v3 = await post(base, `/v3/notification/${FCM}`, silent);
    expect(v3.status).toBe(503);
    expect(await v3.json()).toEqual({ reason: 'connection_lost' });
    w.fakes.script(FCM, slow, slow, slow);
    const v2 = await post(base, `/v2/notification/${FCM}`, silent);
    expect(v2.status).toBe(500);
    expect(await v2.json()).toEqual({ details: 'connection_lost' });
  }, 20_000);
});

describe('the MongoosePush answers when a provider cannot be reached', () => {
  let w: BridgeWorld;
  let base: string;
  beforeAll(async () => {
    const port = await freePort();
    const dead = `https://127.0.0.1:${await freePort()}`;
    w = await bridgeWorld({ mongoosepushPort: port });
    // A second gateway whose FCM app points at a port nobody listens on.
    const file = join(w.pki.dir, 'dead-bridges.json');
    writeFileSync(
      file,
      JSON.stringify({
        fcm: { dead: { serviceAccount: w.fakes.serviceAccountFile, baseUrl: dead, tokenUrl: `${dead}/token`, ca: w.pki.caFile } },
        mongoosepush: { fcm: 'dead' },
      }),
    );
    await w.gw.close();
    const mp = await freePort();
    w.gw = await startGateway({ bridges: file, mongoosepushPort: mp });
    base = `http://127.0.0.1:${mp}`;
  });
  afterAll(async () => {
    await w.close();
  });

  it('v3 503 unable_to_connect; v2 503 "Please try again later"', async () => {
    const v3 = await post(base, `/v3/notification/${FCM}`, silent);
    expect(v3.status).toBe(503);
    expect(await v3.json()).toEqual({ reason: 'unable_to_connect' });
    const v2 = await post(base, `/v2/notification/${FCM}`, silent);
    expect(v2.status).toBe(503);
    expect(await v2.json()).toEqual({ details: 'Please try again later' });
  });

  it('a service and mode with no app: 400 no_matching_pool in v3, 500 in v1', async () => {
    const v3 = await post(base, `/v3/notification/${'ab'.repeat(32)}`, { service: 'apns', mode: 'dev', alert: { title: 't', body: 'b' } });
    expect(v3.status).toBe(400);
    expect(await v3.json()).toEqual({ reason: 'no_matching_pool' });
    const v1 = await post(base, `/v1/notification/${'ab'.repeat(32)}`, { service: 'apns', title: 't', body: 'b' });
    expect(v1.status).toBe(500);
    expect(await v1.json()).toEqual({ details: 'no_matching_pool' });
  });
});

describe('shutting the MongoosePush listener down', () => {
  it('cuts an HTTP/2 session left open after PUSHGATE_SHUTDOWN_GRACE instead of waiting for it forever', async () => {
    const pki = makePki();
    const port = await freePort();
    const gw = await startGateway({
      mongoosepushPort: port,
      mongoosepushTlsCert: join(pki.dir, 'server.pem'),
      mongoosepushTlsKey: join(pki.dir, 'server.key'),
      shutdownGrace: 1,
    });
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca: pki.ca });
    session.on('error', () => {});
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    // A request left unread keeps its stream, and so the session, open.
    await new Promise<void>((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': `/v3/notification/${FCM}`, 'content-type': 'application/json' });
      stream.on('error', () => {});
      stream.once('response', () => resolve());
      stream.end(JSON.stringify(silent));
    });
    const started = Date.now();
    await gw.close();
    await closed;
    expect(Date.now() - started).toBeLessThan(5000);
  }, 20_000);
});
