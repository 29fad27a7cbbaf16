/**
 * The doors beyond the websocket and the push endpoint, with PUSHGATE_WORKERS=2 (issue 13: every feature works with
 * several workers): the XMPP component (one connection for the machine, in worker 1; its publishes reach a device
 * through worker 1's bridges, and a Web Push subscription of this machine on whichever worker holds it), the bridge
 * registration API and the MongoosePush listener (each worker's own bridges, shown by each worker's own provider
 * token). Providers are the local fakes; the XMPP server is the fake XEP-0114 server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerFakes } from '../fakes/setup.js';
import type { ProviderFakes } from '../fakes/providers.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { directoryInSync, freePort, startWorkers } from '../helpers/gateway.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { channelId, post } from '../helpers/push.js';
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
