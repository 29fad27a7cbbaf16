import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { channelId, sendWebPush } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';
import { dashboardToken, readVapidKey } from '../../src/dashboard/token.js';
import { bridgeWorld } from '../fakes/setup.js';

/**
 * The dashboard API against a real gateway: the real `web-push` library sends, `ws` clients receive and ack, and
 * each outcome is read back through the API with the sender's own VAPID key.
 */

type Keys = { publicKey: string; privateKey: string };
const keyA = webpush.generateVAPIDKeys();
const keyB = webpush.generateVAPIDKeys();

function auth(gw: TestGateway, keys: Keys): Record<string, string> {
  return webpush.getVapidHeaders(gw.config.publicUrl, 'mailto:dev@example.com', keys.publicKey, keys.privateKey, 'aes128gcm');
}

async function call(
  gw: TestGateway,
  method: string,
  path: string,
  keys: Keys | null,
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(gw.url + path, { method, headers: keys ? auth(gw, keys) : {} });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, text };
}

interface View {
  id: string | null;
  outcome: string;
  status: number | null;
  errno: number | null;
  ttl: number | null;
  topic: string | null;
  urgency: string | null;
  size: number;
  subscription: string | null;
  delivered_at: string | null;
  latency_ms: number | null;
}

async function messages(gw: TestGateway, keys: Keys, query = ''): Promise<View[]> {
  await gw.dashboard.flush();
  const r = await call(gw, 'GET', `/dashboard/api/messages${query}`, keys);
  expect(r.status).toBe(200);
  return r.body['messages'] as View[];
}

/** Waits (bounded) until the message with this Location id has the outcome. */
async function outcomeOf(gw: TestGateway, keys: Keys, id: string, outcome: string, timeoutMs = 5000): Promise<View> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // delivered without delivered_at is "handed to the browser, not acked yet".
    const acked = (v: View) => !outcome.startsWith('delivered') || v.delivered_at !== null;
    const m = (await messages(gw, keys)).find((v) => v.id === id && v.outcome === outcome && acked(v));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`message never reached ${outcome}: ${JSON.stringify(await messages(gw, keys))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const idOf = (res: Response): string => res.headers.get('location')!.split('/m/')[1]!;

describe('dashboard API', () => {
  let gw: TestGateway;
  const browser = new BrowserKeys();
  let client: PushClient;
  let uaid: string;
  let endpoint: string;
  let chid: string;
  const SECRET = 'secret payload text 7f3a';

  beforeAll(async () => {
    gw = await startGateway({ dashboardFlushMs: 60_000 });
    client = await PushClient.connect(gw.wsUrl);
    uaid = await client.hello();
    chid = channelId();
    endpoint = (await client.register(chid, keyA.publicKey))['pushEndpoint'] as string;
  });
  afterAll(async () => {
    client.close();
    await gw.close();
  });

  const push = (payload: string | undefined, options: webpush.RequestOptions = {}, keys: Keys = keyA, to = endpoint) =>
    sendWebPush(browser.subscription(to), payload, { vapidDetails: { subject: 'mailto:dev@example.com', ...keys }, ...options });

  it('refuses calls without a valid VAPID token for this server, and counts them', async () => {
    expect((await call(gw, 'GET', '/dashboard/api/messages', null)).status).toBe(401);
    const wrongAud = webpush.getVapidHeaders('https://elsewhere.example', 'mailto:a@b.c', keyA.publicKey, keyA.privateKey, 'aes128gcm') as Record<
      string,
      string
    >;
    const r = await fetch(`${gw.url}/dashboard/api/keys`, { method: 'POST', headers: wrongAud });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { errno: number }).errno).toBe(109);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="dashboard",reason="missing"\} 1/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="dashboard",reason="invalid"\} 1/);
  });

  it('keeps nothing for a key that has not opted in', async () => {
    expect((await call(gw, 'GET', '/dashboard/api/keys', keyA)).body).toEqual({ opted_in: false });
    client.close();
    await client.closedWith;
    expect((await push('before opt-in')).status).toBe(201);
    expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
    expect((await call(gw, 'GET', '/dashboard/api/keys', keyA)).body).toEqual({ opted_in: true });
    expect(await messages(gw, keyA)).toEqual([]);
    // Take the stored message off the queue so the following tests start clean.
    client = await PushClient.connect(gw.wsUrl);
    await client.hello(uaid);
    const n = await client.next();
    client.ack(chid, n['version'] as string);
  });

  it('records delivered (with delivered_at and latency), never the payload or the endpoint', async () => {
    const res = await push(SECRET, { TTL: 120, urgency: 'high' });
    expect(res.status).toBe(201);
    const n = await client.next();
    client.ack(chid, n['version'] as string);
    const m = await outcomeOf(gw, keyA, idOf(res), 'delivered');
    expect(m.delivered_at).not.toBeNull();
    expect(m.latency_ms).toBeGreaterThanOrEqual(0);
    expect(m.ttl).toBe(120);
    expect(m.urgency).toBe('high');
    expect(m.size).toBeGreaterThan(SECRET.length);
    expect(m.subscription).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const text = (await call(gw, 'GET', '/dashboard/api/messages', keyA)).text;
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(n['data'] as string);
    expect(text).not.toContain(endpoint.split('/').pop()!);
    expect(text).not.toContain(uaid);
    expect(text).not.toContain(chid);
  });

  it('records stored, then delivered_from_storage when the browser comes back and acks', async () => {
    client.close();
    await client.closedWith;
    const res = await push('later', { TTL: 300 });
    await outcomeOf(gw, keyA, idOf(res), 'stored');
    client = await PushClient.connect(gw.wsUrl);
    await client.hello(uaid);
    const n = await client.next();
    client.ack(chid, n['version'] as string);
    const m = await outcomeOf(gw, keyA, idOf(res), 'delivered_from_storage');
    expect(m.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('records dropped (TTL 0, no client), replaced (Topic), deleted (by the sender) and expired', async () => {
    client.close();
    await client.closedWith;
    const dropped = await push('now or never', { TTL: 0 });
    await outcomeOf(gw, keyA, idOf(dropped), 'dropped');

    const first = await push('v1 of state', { TTL: 300, topic: 'state' });
    await outcomeOf(gw, keyA, idOf(first), 'stored');
    const second = await push('v2 of state', { TTL: 300, topic: 'state' });
    const all = await messages(gw, keyA, '?outcome=replaced');
    expect(all).toHaveLength(1);
    expect(all[0]!.topic).toBe('state');
    await outcomeOf(gw, keyA, idOf(second), 'stored');

    const toDelete = await push('oops', { TTL: 300 });
    const del = await fetch(toDelete.headers.get('location')!, { method: 'DELETE' });
    expect(del.status).toBe(204);
    await outcomeOf(gw, keyA, idOf(toDelete), 'deleted');

    const shortLived = await push('short', { TTL: 1 });
    await outcomeOf(gw, keyA, idOf(shortLived), 'expired', 3000);
  });

  it('records rejections with status and errno when the token was valid: 413 and a 401 key mismatch', async () => {
    // The endpoint accepts bodies up to PUSHGATE_MAX_DATA_BYTES (5630 by default, autopush's max_data_bytes); a payload
    // of that size encrypts to more than the limit: the 413 errno 104 a developer needs to see.
    expect(gw.config.maxDataBytes).toBe(5630);
    const big = await push('x'.repeat(gw.config.maxDataBytes), { TTL: 60 });
    expect(big.status).toBe(413);
    // keyA's endpoint pushed with keyB: rejected, recorded for keyB only if keyB opted in (it has not yet).
    const mismatch = await push('wrong key', { TTL: 60 }, keyB);
    expect(mismatch.status).toBe(401);
    await gw.dashboard.flush();
    const rejected = await messages(gw, keyA, '?outcome=rejected');
    expect(rejected.map((m) => [m.status, m.errno])).toContainEqual([413, 104]);
    expect(rejected.every((m) => m.id === null)).toBe(true);
    expect((await call(gw, 'POST', '/dashboard/api/keys', keyB)).status).toBe(201);
    await push('wrong key again', { TTL: 60 }, keyB);
    const deadline = Date.now() + 5000;
    let seen: View[] = [];
    while (seen.length === 0 && Date.now() < deadline) {
      seen = await messages(gw, keyB, '?outcome=rejected');
      if (seen.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(seen.map((m) => [m.status, m.errno])).toEqual([[401, 109]]);
  });

  it('never shows one key the messages of another, and hashes the same subscription differently per key', async () => {
    const aIds = new Set((await messages(gw, keyA)).map((m) => m.subscription));
    const b = await messages(gw, keyB);
    expect(b.length).toBe(1);
    expect(b.every((m) => m.outcome === 'rejected')).toBe(true);
    expect(aIds.has(b[0]!.subscription)).toBe(false);
    expect(b[0]!.subscription).not.toBeNull();
  });

  it('filters by outcome and time, pages with a cursor, and counts per hour', async () => {
    const all = await messages(gw, keyA);
    expect(all.length).toBeGreaterThanOrEqual(8);
    const page1 = await call(gw, 'GET', '/dashboard/api/messages?limit=3', keyA);
    const p1 = page1.body['messages'] as View[];
    expect(p1).toHaveLength(3);
    const page2 = await call(gw, 'GET', `/dashboard/api/messages?limit=3&cursor=${String(page1.body['next_cursor'])}`, keyA);
    expect([...p1, ...(page2.body['messages'] as View[])].map((m) => m.id)).toEqual(all.slice(0, 6).map((m) => m.id));
    expect(await messages(gw, keyA, `?since=${Date.now() + 60_000}`)).toEqual([]);
    for (const bad of ['outcome=bogus', 'limit=0', 'limit=5000', 'since=yesterday', 'extra=1', `cursor=${'x'.repeat(2000)}`]) {
      expect((await call(gw, 'GET', `/dashboard/api/messages?${bad}`, keyA)).status).toBe(400);
    }
    const stats = (await call(gw, 'GET', '/dashboard/api/stats', keyA)).body as { hours: unknown[]; totals: Record<string, number> };
    expect(stats.hours).toHaveLength(72);
    const counts: Record<string, number> = {};
    for (const m of all) counts[m.outcome] = (counts[m.outcome] ?? 0) + 1;
    for (const [o, n] of Object.entries(counts)) expect(stats.totals[o]).toBe(n);
  });

  it('opts out and erases; opting in again starts empty', async () => {
    const r = await call(gw, 'DELETE', '/dashboard/api/keys', keyA);
    expect(r.body).toEqual({ opted_in: false, erased: true });
    await push('after opt-out', { TTL: 60 });
    expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
    expect(await messages(gw, keyA)).toEqual([]);
  });

  it('accepts the token printed by `pushgate vapid-token`', async () => {
    const header = await dashboardToken(readVapidKey(`${keyA.publicKey}.${keyA.privateKey}`), gw.config.publicUrl);
    const res = await fetch(`${gw.url}/dashboard/api/keys`, { headers: { authorization: header } });
    expect(await res.json()).toEqual({ opted_in: true });
  });
});

describe('dashboard bounds', () => {
  it('opts in at most PUSHGATE_DASHBOARD_MAX_KEYS keys (keys are free to make), and an opted-in key may repeat', async () => {
    const gw = await startGateway({ dashboardMaxKeys: 1 });
    try {
      expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
      expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
      const full = await call(gw, 'POST', '/dashboard/api/keys', keyB);
      expect([full.status, full.body['errno']]).toEqual([429, 201]);
      expect((await call(gw, 'DELETE', '/dashboard/api/keys', keyA)).status).toBe(200);
      expect((await call(gw, 'POST', '/dashboard/api/keys', keyB)).status).toBe(201);
    } finally {
      await gw.close();
    }
  });

  it('keeps only the newest PUSHGATE_DASHBOARD_MAX_MESSAGES per key', async () => {
    const gw = await startGateway({ dashboardMaxMessages: 3, dashboardFlushMs: 60_000 });
    try {
      const client = await PushClient.connect(gw.wsUrl);
      await client.hello();
      const endpoint = (await client.register(channelId()))['pushEndpoint'] as string;
      client.close();
      await client.closedWith;
      expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await sendWebPush(new BrowserKeys().subscription(endpoint), `m${i}`, { vapidDetails: { subject: 'mailto:dev@example.com', ...keyA } });
        ids.push(idOf(res));
        await gw.dashboard.flush();
      }
      const kept = await messages(gw, keyA);
      expect(kept.map((m) => m.id)).toEqual(ids.slice(2).reverse());
    } finally {
      await gw.close();
    }
  });
});

describe('dashboard during a store outage', () => {
  it('costs records, never a push: the push is accepted and the unsaved batch is dropped and counted', async () => {
    const gw = await startGateway({ dashboardFlushMs: 60_000 });
    try {
      const client = await PushClient.connect(gw.wsUrl);
      await client.hello();
      const endpoint = (await client.register(channelId()))['pushEndpoint'] as string;
      client.close();
      await client.closedWith;
      expect((await call(gw, 'POST', '/dashboard/api/keys', keyA)).status).toBe(201);
      const save = gw.store.saveDashboardRecords.bind(gw.store);
      gw.store.saveDashboardRecords = async () => {
        throw new Error('store unreachable');
      };
      const res = await sendWebPush(new BrowserKeys().subscription(endpoint), 'still delivered', {
        vapidDetails: { subject: 'mailto:dev@example.com', ...keyA },
      });
      expect(res.status).toBe(201);
      await gw.dashboard.flush();
      expect(gw.dashboard.dropped).toBe(1);
      gw.store.saveDashboardRecords = save;
      expect(await messages(gw, keyA)).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe('dashboard with a bridged (FCM) subscription', () => {
  it('records bridged when the provider (the FCM fake) accepted the message', async () => {
    const w = await bridgeWorld({ dashboardFlushMs: 60_000 });
    try {
      const res = await fetch(`${w.gw.url}/v1/fcm/org.example.app/registration`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'fcm-device-token-dash' }),
      });
      const { endpoint } = (await res.json()) as { endpoint: string };
      expect((await call(w.gw, 'POST', '/dashboard/api/keys', keyB)).status).toBe(201);
      const sent = await sendWebPush(new BrowserKeys().subscription(endpoint), 'to a phone', { vapidDetails: { subject: 'mailto:dev@example.com', ...keyB } });
      expect(sent.status).toBe(201);
      expect(w.fakes.for('fcm', 'fcm-device-token-dash')).toHaveLength(1);
      const [m] = await messages(w.gw, keyB);
      expect(m).toMatchObject({ id: idOf(sent), outcome: 'bridged', detail: 'fcm accepted it' });
    } finally {
      await w.close();
    }
  });
});
