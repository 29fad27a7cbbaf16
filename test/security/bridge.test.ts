/**
 * Issue 9's findings against the bridges (FCM/APNs/ADM), the autopush bridge registration API and the MongoosePush
 * API, replayed as attacks from the attacker's side:
 *
 * - finding 1  (MongoosePush open relay)       → 'finding 1: …' (POST /v1|v2|v3/notification/{token} on the public port;
 *                                                 the own listener beyond loopback without basic auth; guessed credentials)
 * - finding 5  (registration abuse, bridge)    → 'finding 5: …' (2,001 channels on one uaid, pipelined; 1 MB router_data)
 * - finding 9  (unbounded bridge queues)       → 'finding 9: …' (a provider that stops answering: MongoosePush and Web Push senders)
 * - finding 17 (failed auth, bridge)           → 'finding 17: …' (`node dist/cli.js serve` as its own process: wrong bridge
 *                                                 secrets and MongoosePush credentials, its whole log output and /metrics)
 *
 * Real parts: the gateway (in process, or as its own process for what its logs show), SQLite, the provider fakes
 * under test/fakes (FCM, APNs, ADM over HTTP/2 and TLS).
 */
import { mkdtempSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { makePki, type TestPki } from '../fakes/pki.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { freePort, startGateway } from '../helpers/gateway.js';
import { buildDist, authFailureLines, startNode, type NodeProcess } from '../helpers/node-process.js';
import { post } from '../helpers/push.js';

const FCM = 'fcm-victim-token-bridge';
const APNS = 'ab'.repeat(32);
const lure = { service: 'fcm', alert: { title: 'Your bank', body: 'account locked', click_action: 'https://evil.example/login' } };
const silent = { service: 'fcm', data: { 'message-count': 1 } };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const json = (base: string, path: string, body: unknown, headers: Record<string, string> = {}, method = 'POST') =>
  fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? null : JSON.stringify(body) });
const api = (base: string, path: string, method: string, body?: unknown, secret?: string) =>
  fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
    body: body === undefined ? null : JSON.stringify(body),
  });
type Registration = { uaid: string; channelID: string; endpoint: string; secret: string };

/** Whether anything accepts TCP connections on this loopback port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** Runs `tasks` with at most `width` in flight: an attacker's pipelined burst. */
async function burst<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

describe('finding 1: the MongoosePush API is no open relay', () => {
  let w: BridgeWorld;
  let port: number;
  let pki: TestPki;
  const PASSWORD = 'correct horse battery';
  beforeAll(async () => {
    port = await freePort();
    pki = makePki();
    w = await bridgeWorld({
      mongoosepushPort: port,
      mongoosepushHost: '0.0.0.0',
      mongoosepushTlsCert: join(pki.dir, 'server.pem'),
      mongoosepushTlsKey: join(pki.dir, 'server.key'),
      mongoosepushUser: 'mongooseim',
      mongoosepushPassword: PASSWORD,
    });
  });
  afterAll(async () => {
    await w.close();
  });
  beforeEach(() => w.fakes.reset());

  /** node:https with the test CA (the listener's certificate is the fakes' server certificate). */
  const tlsPost = (path: string, body: unknown, authorization?: string) =>
    new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path,
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

  it('the public port relays nothing, with or without credentials, and tells nothing about tokens', async () => {
    const answers = [];
    for (const version of ['v1', 'v2', 'v3']) {
      for (const token of [FCM, APNS, 'not-a-token']) {
        for (const headers of [{}, { authorization: basic('mongooseim', PASSWORD) }] as Record<string, string>[]) {
          const res = await json(w.gw.url, `/${version}/notification/${token}`, lure, headers);
          answers.push([res.status, await res.text()]);
        }
      }
    }
    // One answer (404) for every version, token and credential: no oracle for whether a token is live.
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]![0]).toBe(404);
    expect(w.fakes.received).toHaveLength(0);
  });

  it.each(['0.0.0.0', '::', '10.0.0.5', '192.168.1.10'])(
    'a gateway told to serve it on %s without basic auth refuses to start; nothing listens',
    async (host) => {
      const p = await freePort();
      await expect(startGateway({ bridges: w.bridgesFile, mongoosepushPort: p, mongoosepushHost: host })).rejects.toThrow(ConfigError);
      await expect(startGateway({ bridges: w.bridgesFile, mongoosepushPort: p, mongoosepushHost: host })).rejects.toThrow(
        /PUSHGATE_MONGOOSEPUSH_USER and PUSHGATE_MONGOOSEPUSH_PASSWORD/,
      );
      expect(await listening(p)).toBe(false);
    },
  );

  it('guessed credentials on the own listener: 401 each, counted, nothing sent, no token oracle', async () => {
    const before = (await w.gw.metrics.authFailures.get()).values.filter((v) => v.labels['door'] === 'mongoosepush').reduce((n, v) => n + v.value, 0);
    const guesses = [
      undefined,
      basic('mongooseim', 'wrong horse battery'),
      basic('mongooseim', PASSWORD.slice(0, -1)),
      basic('mongooseim', `${PASSWORD}x`),
      basic('mongooseim', ''),
      basic('admin', PASSWORD),
      basic('', PASSWORD),
      `Basic ${Buffer.from('mongooseim').toString('base64')}`,
      'Basic !!!not-base64!!!',
      `Bearer ${PASSWORD}`,
      basic('mongooseim', PASSWORD).toLowerCase(),
    ];
    const replies = [];
    for (const auth of guesses) {
      for (const token of [FCM, 'not-a-token']) {
        const res = await tlsPost(`/v3/notification/${token}`, lure, auth);
        expect(res.status, String(auth)).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic realm="MongoosePush"/);
        replies.push(res.body);
      }
    }
    // Before authentication nothing about the device token is looked at: every refusal reads the same.
    expect(new Set(replies).size).toBe(1);
    expect(w.fakes.received).toHaveLength(0);
    const after = (await w.gw.metrics.authFailures.get()).values.filter((v) => v.labels['door'] === 'mongoosepush').reduce((n, v) => n + v.value, 0);
    expect(after - before).toBe(guesses.length * 2);
    // Control: the right credentials do send.
    expect((await tlsPost(`/v3/notification/${FCM}`, silent, basic('mongooseim', PASSWORD))).status).toBe(200);
    expect(w.fakes.for('fcm', FCM)).toHaveLength(1);
  });
});

describe('finding 5: bridge registrations are bounded', () => {
  let w: BridgeWorld;
  beforeAll(async () => {
    w = await bridgeWorld();
  });
  afterAll(async () => {
    await w.close();
  });

  const register = async (type: string, app: string, body: Record<string, unknown>): Promise<Registration> => {
    const res = await api(w.gw.url, `/v1/${type}/${app}/registration`, 'POST', body);
    expect(res.status).toBe(200);
    return (await res.json()) as Registration;
  };

  it('2,001 channels sent at once on one uaid: the default cap (1,000) holds, the rest get 400 errno 999', async () => {
    const reg = await register('fcm', 'org.example.app', { token: FCM });
    const sub = `/v1/fcm/org.example.app/registration/${reg.uaid}/subscription`;
    const statuses = await burst(2001, 64, async () => {
      const res = await api(w.gw.url, sub, 'POST', {}, reg.secret);
      const body = (await res.json()) as { errno?: number };
      return res.status === 200 ? 200 : `${res.status}/${body.errno}`;
    });
    const cap = w.gw.config.bridgeMaxChannels;
    // The registration's own channel counts: 1 + accepted = cap.
    expect(statuses.filter((s) => s === 200)).toHaveLength(cap - 1);
    expect(statuses.filter((s) => s === '400/999')).toHaveLength(2001 - (cap - 1));
    expect(await w.gw.store.getChannels(reg.uaid)).toHaveLength(cap);
  }, 120_000);

  it.each([
    ['1 MB of aps at registration', 'POST', { token: APNS, aps: { alert: 'x'.repeat(1_000_000) } }, 400, 999],
    ['1 MB of aps as a JSON string', 'POST', { token: APNS, aps: JSON.stringify({ alert: 'x'.repeat(1_000_000) }) }, 400, 999],
    ['a 1 MB token', 'POST', { token: 'a'.repeat(1_000_000) }, 400, 108],
  ])('refuses %s', async (_name, method, body, status, errno) => {
    const res = await api(w.gw.url, '/v1/apns/org.example.app/registration', method, body);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ code: status, errno });
  });

  it('refuses 1 MB of aps on an update; the stored router data stays as it was', async () => {
    const reg = await register('apns', 'org.example.app', { token: APNS, aps: { 'mutable-content': 1 } });
    const res = await api(
      w.gw.url,
      `/v1/apns/org.example.app/registration/${reg.uaid}`,
      'PUT',
      { token: APNS, aps: { alert: 'x'.repeat(1_000_000) } },
      reg.secret,
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 400, errno: 999 });
    expect((await w.gw.store.getUser(reg.uaid))!.routerData).toEqual({ token: APNS, app_id: 'org.example.app', aps: { 'mutable-content': 1 } });
  });
});

describe('finding 5: the channel cap, re-registration and freeing (PUSHGATE_BRIDGE_MAX_CHANNELS=3)', () => {
  let w: BridgeWorld;
  beforeAll(async () => {
    w = await bridgeWorld({ bridgeMaxChannels: 3 });
  });
  afterAll(async () => {
    await w.close();
  });

  it('attack: one uaid cannot hold more than PUSHGATE_BRIDGE_MAX_CHANNELS channels', async () => {
    const res = await api(w.gw.url, '/v1/fcm/org.example.app/registration', 'POST', { token: FCM });
    const reg = (await res.json()) as Registration;
    const sub = `/v1/fcm/org.example.app/registration/${reg.uaid}/subscription`;
    const added: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await api(w.gw.url, sub, 'POST', {}, reg.secret);
      expect(r.status).toBe(200);
      added.push(((await r.json()) as { channelID: string }).channelID);
    }
    const refused = await api(w.gw.url, sub, 'POST', {}, reg.secret);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: 400, errno: 999 });
    // Re-registering a channel it holds is no new channel; freeing one makes room.
    expect((await api(w.gw.url, sub, 'POST', { channelID: added[0] }, reg.secret)).status).toBe(200);
    expect((await api(w.gw.url, `${sub}/${added[1]}`, 'DELETE', undefined, reg.secret)).status).toBe(200);
    expect((await api(w.gw.url, sub, 'POST', {}, reg.secret)).status).toBe(200);
    const list = await api(w.gw.url, `/v1/fcm/org.example.app/registration/${reg.uaid}`, 'GET', undefined, reg.secret);
    expect(((await list.json()) as { channelIDs: string[] }).channelIDs).toHaveLength(3);
  });
});

describe('finding 9: a provider that stops answering cannot make senders wait', () => {
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
  beforeEach(() => w.fakes.reset());

  const queueFull = async () => {
    const bridge = w.gw.bridges.get('fcm', 'org.example.app') as unknown as { queued: number };
    await new Promise<void>((resolve) => {
      const check = () => (bridge.queued >= 2 ? resolve() : setImmediate(check));
      check();
    });
  };

  it('MongoosePush: beyond the queue senders get 503 with Retry-After at once', async () => {
    const stall = { status: 200, body: { name: 'late' }, delayMs: 800 };
    w.fakes.script(FCM, stall, stall);
    const arrived = w.fakes.next('fcm', FCM);
    const first = json(base, `/v3/notification/${FCM}`, silent);
    await arrived;
    const second = json(base, `/v3/notification/${FCM}`, silent);
    await queueFull();
    const started = Date.now();
    const third = await json(base, `/v3/notification/${FCM}`, silent);
    expect(Date.now() - started).toBeLessThan(500);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(await third.json()).toEqual({ reason: 'service_internal' });
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  }, 20_000);

  it('Web Push to a bridged endpoint: beyond the queue senders get 503 errno 201 with Retry-After at once', async () => {
    const token = 'fcm-stalled-webpush-0001';
    const reg = (await (await api(w.gw.url, '/v1/fcm/org.example.app/registration', 'POST', { token })).json()) as Registration;
    const stall = { status: 200, body: { name: 'late' }, delayMs: 800 };
    w.fakes.script(token, stall, stall);
    const arrived = w.fakes.next('fcm', token);
    let firstDone = false;
    const first = post(reg.endpoint, { TTL: '60' }).finally(() => (firstDone = true));
    await arrived;
    const second = post(reg.endpoint, { TTL: '60' });
    await queueFull();
    const burstReplies = await Promise.all(Array.from({ length: 20 }, () => post(reg.endpoint, { TTL: '60' })));
    // Every refusal came back while the stalled sends were still waiting on the provider: none waited behind them.
    expect(firstDone).toBe(false);
    for (const res of burstReplies) {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ code: 503, errno: 201 });
    }
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
    // Only the two queued sends reached the provider; the refused ones were never queued behind them.
    expect(w.fakes.for('fcm', token)).toHaveLength(2);
  }, 20_000);
});

describe("finding 17: failed bridge and MongoosePush authentications, seen from the operator's side of a real process", () => {
  let w: BridgeWorld;
  let node: NodeProcess;
  let url: string;
  let mp: string;
  const PASSWORD = 'mongoose-password-never-logged';
  beforeAll(async () => {
    buildDist();
    w = await bridgeWorld();
    const port = await freePort();
    const mpPort = await freePort();
    url = `http://127.0.0.1:${port}`;
    mp = `http://127.0.0.1:${mpPort}`;
    node = await startNode({
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_PORT: String(port),
      PUSHGATE_PUBLIC_URL: url,
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
      PUSHGATE_STORE: 'sqlite::memory:',
      PUSHGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'pushgate-sec-')),
      PUSHGATE_BRIDGES: w.bridgesFile,
      PUSHGATE_MONGOOSEPUSH_PORT: String(mpPort),
      PUSHGATE_MONGOOSEPUSH_USER: 'mongooseim',
      PUSHGATE_MONGOOSEPUSH_PASSWORD: PASSWORD,
    });
  }, 120_000);
  afterAll(async () => {
    await node?.kill('SIGTERM');
    await w?.close();
  });

  it('a wrong bridge secret: 401 errno 109, logged by reason without the secret, counted', async () => {
    const reg = (await (await api(url, '/v1/fcm/org.example.app/registration', 'POST', { token: FCM })).json()) as Registration;
    const other = (await (await api(url, '/v1/fcm/org.example.app/registration', 'POST', { token: FCM })).json()) as Registration;
    const path = `/v1/fcm/org.example.app/registration/${reg.uaid}`;
    const guessed = 'guessed-bridge-secret-0123456789';
    // Missing, a guess, another uaid's real secret, a near miss, a malformed header: each is what an attacker would try.
    const tries: (string | undefined)[] = [undefined, guessed, other.secret, reg.secret.slice(0, -1)];
    for (const secret of tries) {
      for (const [method, sub] of [
        ['GET', ''],
        ['DELETE', ''],
        ['POST', '/subscription'],
      ] as const) {
        const res = await api(url, `${path}${sub}`, method, method === 'POST' ? {} : undefined, secret);
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: 401, errno: 109 });
      }
    }
    const malformed = await fetch(`${url}${path}`, { headers: { authorization: `Basic ${guessed}` } });
    expect(malformed.status).toBe(401);
    // Nothing changed: the registration still has its one channel.
    const list = await api(url, path, 'GET', undefined, reg.secret);
    expect(((await list.json()) as { channelIDs: string[] }).channelIDs).toEqual([reg.channelID]);

    // MongoosePush guesses on its own listener.
    expect((await json(mp, `/v3/notification/${FCM}`, silent, { authorization: basic('mongooseim', 'guessed-mongoose-password') })).status).toBe(401);
    expect((await json(mp, `/v3/notification/${FCM}`, silent)).status).toBe(401);
    expect(w.fakes.received).toHaveLength(0);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="bridge",reason="missing"\} 3/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="bridge",reason="wrong_secret"\} 9/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="bridge",reason="malformed"\} 1/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="mongoosepush",reason="wrong"\} 1/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="mongoosepush",reason="missing"\} 1/);

    // The log lines are written as the refusals happen; wait (bounded) for the last one to be read.
    const failed = await authFailureLines(node, 15);
    expect(failed.filter((l) => l['door'] === 'bridge')).toHaveLength(13);
    expect(failed.filter((l) => l['door'] === 'mongoosepush').map((l) => l['reason'])).toEqual(['wrong', 'missing']);
    const all = node.output.join('') + metrics;
    for (const secret of [
      guessed,
      other.secret,
      reg.secret,
      reg.secret.slice(0, -1),
      PASSWORD,
      'guessed-mongoose-password',
      Buffer.from(`mongooseim:guessed-mongoose-password`).toString('base64'),
    ]) {
      expect(all).not.toContain(secret);
    }
  });
});
