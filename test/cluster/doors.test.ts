/**
 * The doors beyond the websocket and the push endpoint, with PUSHGATE_WORKERS=2 (issue 13: every feature works with
 * several workers): the XMPP component (one connection for the machine, in worker 1; its publishes reach a device
 * through worker 1's bridges, and a Web Push subscription of this machine on whichever worker holds it), the bridge
 * registration API and the MongoosePush listener (each worker's own bridges, shown by each worker's own provider
 * token), and the developer dashboard (a push recorded by the worker that took it, its ack by the worker that holds
 * the client). Providers are the local fakes; the XMPP server is the fake XEP-0114 server.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import webpush from 'web-push';
import { openStore } from '../../src/store/index.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { providerFakes } from '../fakes/setup.js';
import type { ProviderFakes } from '../fakes/providers.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { directoryInSync, freePort, startWorkers } from '../helpers/gateway.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { channelId, post, sendWebPush } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';
import { componentClient, FakeComponentServer } from '../helpers/xmpp-server.js';

const PUSH = 'push.example.org';
const SECRET = 'component-secret';

describe('the XMPP, bridge and MongoosePush doors with PUSHGATE_WORKERS=2', () => {
  let fakes: ProviderFakes;
  let server: FakeComponentServer;
  let node: NodeProcess;
  let base: string;
  let ws: string;
  let mongoosepush: string;

  beforeAll(async () => {
    let bridgesFile: string;
    ({ fakes, bridgesFile } = await providerFakes());
    server = new FakeComponentServer(PUSH, SECRET);
    await server.listen();
    const mpPort = await freePort();
    mongoosepush = `http://127.0.0.1:${mpPort}`;
    ({ node, base, ws } = await startWorkers('pushgate-doors-', 2, {
      PUSHGATE_BRIDGES: bridgesFile,
      PUSHGATE_XMPP_SERVICE: server.service,
      PUSHGATE_XMPP_DOMAIN: PUSH,
      PUSHGATE_XMPP_PASSWORD: SECRET,
      PUSHGATE_MONGOOSEPUSH_PORT: String(mpPort),
    }));
    await server.connected();
  });
  afterAll(async () => {
    await node?.kill('SIGTERM');
    await server?.close();
    await fakes?.stop();
  });

  /**
   * Sends `send()` on fresh connections (the kernel picks the worker that accepts each) until `count()`, the provider
   * tokens fetched so far, shows that both workers' bridges have sent: each worker keeps its own token. Returns how
   * many were sent.
   */
  async function untilBothWorkersSent(send: () => Promise<void>, count: () => number): Promise<number> {
    let sent = 0;
    while (count() < 2 && sent < 200) {
      await send();
      sent++;
    }
    expect(count()).toBe(2);
    return sent;
  }

  it('registers by ad-hoc command and publishes to the FCM fake through one component connection for the machine', async () => {
    const x = componentClient(server);
    const reg = await x.register('register-push-fcm', { token: 'fcm-xmpp-cluster', 'device-id': 'phone' }, 'juliet@example.org/phone');
    const pushed = fakes.next('fcm', 'fcm-xmpp-cluster');
    expect((await x.publish(reg.node, { secret: reg.secret }, 'example.org')).attrs['type']).toBe('result');
    expect((await pushed).body).toMatchObject({ token: 'fcm-xmpp-cluster', data: { node: reg.node } });
    // Worker 1 alone holds the component: one handshake, however many workers.
    expect(server.handshakes).toBe(1);
  });

  it("delivers an XMPP Web Push registration to this machine's websocket client, on whichever worker holds it", async () => {
    const x = componentClient(server);
    const browser = new BrowserKeys();
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = await PushClient.connect(ws);
        await c.hello();
        const sub = browser.subscription((await c.register(channelId()))['pushEndpoint'] as string);
        return { c, sub };
      }),
    );
    await directoryInSync(base);
    for (const [i, { c, sub }] of clients.entries()) {
      const from = `juliet${i}@example.org/browser`;
      const reg = await x.register(
        'register-push-webpush',
        { endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth, 'device-id': `b${i}` },
        from,
      );
      expect((await x.publish(reg.node, { secret: reg.secret }, 'example.org')).attrs['type']).toBe('result');
      const n = await c.next();
      expect(n['messageType']).toBe('notification');
      // A publish without a summary: the payload names the node alone.
      expect(JSON.parse(browser.decrypt(n))).toEqual({ node: reg.node });
      c.close();
    }
  });

  it("registers an ADM device through the bridge API and delivers every push, through both workers' bridges", async () => {
    const res = await fetch(`${base}/v1/adm/org.example.kindle/registration`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'adm-cluster-device' }),
    });
    expect(res.status).toBe(200);
    const { endpoint } = (await res.json()) as { endpoint: string };
    const sent = await untilBothWorkersSent(
      async () => {
        const pushed = fakes.next('adm', 'adm-cluster-device');
        expect((await post(endpoint, { TTL: '60', connection: 'close' })).status).toBe(201);
        await pushed;
      },
      () => fakes.admTokenRequests,
    );
    expect(fakes.for('adm', 'adm-cluster-device')).toHaveLength(sent);
  });

  it('answers the MongoosePush API on its own port from both workers, each through its own FCM bridge', async () => {
    const device = 'fcm-mongoosepush-cluster';
    await untilBothWorkersSent(
      async () => {
        const pushed = fakes.next('fcm', device);
        const res = await fetch(`${mongoosepush}/v3/notification/${device}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ service: 'fcm', data: { 'message-count': 1 } }),
        });
        expect(res.status).toBe(200);
        await pushed;
      },
      () => fakes.fcmTokenRequests,
    );
  });
});

describe('the developer dashboard with PUSHGATE_WORKERS=2', () => {
  const keys = webpush.generateVAPIDKeys();
  const keyHash = createHash('sha256').update(Buffer.from(keys.publicKey, 'base64url')).digest('hex');
  let node: NodeProcess;
  let base: string;
  let ws: string;

  beforeAll(async () => {
    // The key opted in before the workers start, so each worker's first read of the key set has it.
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-doors-dashboard-'));
    const storeUrl = `sqlite:${dir}/db`;
    const store = await openStore(storeUrl);
    await store.addDashboardKey(keyHash, Date.now());
    await store.close();
    ({ node, base, ws } = await startWorkers('pushgate-doors-', 2, {
      PUSHGATE_DATA_DIR: dir,
      PUSHGATE_STORE: storeUrl,
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
      PUSHGATE_DASHBOARD_FLUSH_MS: '20',
    }));
  });
  afterAll(async () => {
    await node?.kill('SIGTERM');
  });

  it('records each push where it was accepted and its ack where the client is, whichever workers those are', async () => {
    const auth = () => webpush.getVapidHeaders(base, 'mailto:dev@example.com', keys.publicKey, keys.privateKey, 'aes128gcm') as Record<string, string>;
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = await PushClient.connect(ws);
        await c.hello();
        const chid = channelId();
        return { c, chid, endpoint: (await c.register(chid, keys.publicKey))['pushEndpoint'] as string };
      }),
    );
    await directoryInSync(base);
    const ids: string[] = [];
    for (const { c, chid, endpoint } of clients) {
      // A fresh connection per push: the kernel picks the worker that accepts it.
      const res = await sendWebPush(new BrowserKeys().subscription(endpoint), 'recorded', {
        TTL: 300,
        vapidDetails: { subject: 'mailto:dev@example.com', ...keys },
        headers: { connection: 'close' },
      });
      expect(res.status).toBe(201);
      const n = await c.next();
      c.ack(chid, n['version'] as string);
      ids.push(res.headers.get('location')!.split('/m/')[1]!);
      c.close();
    }
    await vi.waitFor(
      async () => {
        const res = await fetch(`${base}/dashboard/api/messages`, { headers: auth() });
        const messages = ((await res.json()) as { messages: { id: string; outcome: string; delivered_at: string | null }[] }).messages;
        const byId = new Map(messages.map((m) => [m.id, m]));
        for (const id of ids) {
          expect(byId.get(id)?.outcome).toBe('delivered');
          expect(byId.get(id)?.delivered_at).not.toBeNull();
        }
      },
      { timeout: 10_000, interval: 50 },
    );
  });
});
