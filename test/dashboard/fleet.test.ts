import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import webpush from 'web-push';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { freePort, startGateway, type TestGateway } from '../helpers/gateway.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';
import { channelId, sendWebPush } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/**
 * Two gateways on one MongoDB-wire store (FerretDB or MongoDB): a key opted in on one is recorded by the other
 * once its key set refreshes, and either answers with the same records and subscription hashes.
 */
describe('dashboard across peers sharing a MongoDB store', () => {
  let server: MongoServer;
  let a: TestGateway;
  let b: TestGateway;
  const keys = webpush.generateVAPIDKeys();
  const auth = (gw: TestGateway) =>
    webpush.getVapidHeaders(gw.config.publicUrl, 'mailto:dev@example.com', keys.publicKey, keys.privateKey, 'aes128gcm') as Record<string, string>;

  beforeAll(async () => {
    server = await mongoServer();
    const cryptoKey = FernetKey.generate();
    a = await startGateway({ store: server.url('dashfleet'), cryptoKey, dashboardFlushMs: 20 });
    b = await startGateway({ store: server.url('dashfleet'), cryptoKey, dashboardFlushMs: 20 });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await server?.stop();
  });

  it('records on the peer that accepted the push and answers on any peer', async () => {
    const client = await PushClient.connect(a.wsUrl);
    await client.hello();
    const endpointA = (await client.register(channelId(), keys.publicKey))['pushEndpoint'] as string;
    client.close();
    await client.closedWith;
    // The same subscription through peer B's public URL (both peers share the crypto key and the store).
    const endpointB = endpointA.replace(a.config.publicUrl, b.config.publicUrl);

    expect((await fetch(`${a.url}/dashboard/api/keys`, { method: 'POST', headers: auth(a) })).status).toBe(201);
    const hash = createHash('sha256').update(Buffer.from(keys.publicKey, 'base64url')).digest('hex');
    await vi.waitFor(() => expect(b.dashboard.isOptedIn(hash)).toBe(true), { timeout: 5000, interval: 20 });

    const opts = { TTL: 300, vapidDetails: { subject: 'mailto:dev@example.com', ...keys } };
    expect((await sendWebPush(new BrowserKeys().subscription(endpointB), 'via b', opts)).status).toBe(201);
    expect((await sendWebPush(new BrowserKeys().subscription(endpointA), 'via a', opts)).status).toBe(201);
    await a.dashboard.flush();
    await b.dashboard.flush();

    const fromA = (await (await fetch(`${a.url}/dashboard/api/messages`, { headers: auth(a) })).json()) as {
      messages: { outcome: string; subscription: string }[];
    };
    const fromB = (await (await fetch(`${b.url}/dashboard/api/messages`, { headers: auth(b) })).json()) as { messages: unknown[] };
    expect(fromA.messages.map((m) => m.outcome)).toEqual(['stored', 'stored']);
    expect(fromB.messages).toEqual(fromA.messages);
    expect(new Set(fromA.messages.map((m) => m.subscription)).size).toBe(1);
  });

  it('records the ack and the DELETE on the peer that saw them, by message id, for a message accepted on the other', async () => {
    type View = { id: string; outcome: string; delivered_at: string | null; latency_ms: number | null };
    const list = async (gw: TestGateway) => {
      await a.dashboard.flush();
      await b.dashboard.flush();
      return ((await (await fetch(`${gw.url}/dashboard/api/messages`, { headers: auth(gw) })).json()) as { messages: View[] }).messages;
    };
    const hash = createHash('sha256').update(Buffer.from(keys.publicKey, 'base64url')).digest('hex');
    await vi.waitFor(() => expect(a.dashboard.isOptedIn(hash)).toBe(true), { timeout: 5000, interval: 20 });
    const chid = channelId();
    const first = await PushClient.connect(a.wsUrl);
    const uaid = await first.hello();
    const endpoint = (await first.register(chid, keys.publicKey))['pushEndpoint'] as string;
    first.close();
    await first.closedWith;

    // Accepted (and recorded) on A while the browser is away; A's record index is the only one that knows it.
    const opts = { TTL: 300, vapidDetails: { subject: 'mailto:dev@example.com', ...keys } };
    const kept = await sendWebPush(new BrowserKeys().subscription(endpoint), 'ack me on b', opts);
    const gone = await sendWebPush(new BrowserKeys().subscription(endpoint), 'delete me on b', opts);
    const idOf = (r: Response) => r.headers.get('location')!.split('/m/')[1]!;
    await a.dashboard.flush();

    // The sender deletes through B: B finds the record by message id in the store.
    expect((await fetch(`${b.url}/m/${idOf(gone)}`, { method: 'DELETE' })).status).toBe(204);
    // The browser comes back on B, which delivers from storage and sees the ack (the tag came through storage).
    const second = await PushClient.connect(b.wsUrl);
    await second.hello(uaid);
    const n = await second.next();
    expect(n['version']).toBe(idOf(kept));
    second.ack(chid, n['version'] as string);
    await vi.waitFor(
      async () => {
        const byId = new Map((await list(b)).map((m) => [m.id, m]));
        expect(byId.get(idOf(gone))?.outcome).toBe('deleted');
        expect(byId.get(idOf(kept))?.outcome).toBe('delivered_from_storage');
        expect(byId.get(idOf(kept))?.delivered_at).not.toBeNull();
        expect(byId.get(idOf(kept))?.latency_ms).toBeGreaterThanOrEqual(0);
      },
      { timeout: 5000, interval: 50 },
    );
    second.close();
    await second.closedWith;
  });
  it('in a fleet split into endpoint and connection peers, records the ack the connection peer saw (tag over the peer hop)', async () => {
    const secret = 'dashboard-fleet-secret-0123456789';
    const routerPort = await freePort();
    const cryptoKey = FernetKey.generate();
    const store = server.url('dashsplit');
    const conn = await startGateway({ store, cryptoKey, role: 'connection', routerPort, routerSecret: secret, peerUrl: `http://127.0.0.1:${routerPort}` });
    const edge = await startGateway({ store, cryptoKey, role: 'endpoint', routerSecret: secret });
    try {
      expect((await fetch(`${edge.url}/dashboard/api/keys`, { method: 'POST', headers: auth(edge) })).status).toBe(201);
      const client = await PushClient.connect(conn.wsUrl);
      await client.hello();
      const chid = channelId();
      const endpoint = ((await client.register(chid, keys.publicKey))['pushEndpoint'] as string).replace(conn.config.publicUrl, edge.config.publicUrl);
      const opts = { TTL: 300, vapidDetails: { subject: 'mailto:dev@example.com', ...keys } };
      const sent = await sendWebPush(new BrowserKeys().subscription(endpoint), 'over the hop', opts);
      expect(sent.status).toBe(201);
      const n = await client.next();
      expect(n['version']).toBe(sent.headers.get('location')!.split('/m/')[1]);
      client.ack(chid, n['version'] as string);
      await vi.waitFor(
        async () => {
          await edge.dashboard.flush();
          await conn.dashboard.flush();
          const res = await fetch(`${edge.url}/dashboard/api/messages`, { headers: auth(edge) });
          const [m] = ((await res.json()) as { messages: { id: string; outcome: string; delivered_at: string | null }[] }).messages;
          expect(m).toMatchObject({ id: n['version'], outcome: 'delivered' });
          expect(m!.delivered_at).not.toBeNull();
        },
        { timeout: 5000, interval: 50 },
      );
      client.close();
      await client.closedWith;
    } finally {
      await edge.close();
      await conn.close();
    }
  });

  it('records a Topic replacement on the peer that accepted the newer message (RFC 8030 §5.4)', async () => {
    const client = await PushClient.connect(a.wsUrl);
    await client.hello();
    const endpointA = (await client.register(channelId(), keys.publicKey))['pushEndpoint'] as string;
    client.close();
    await client.closedWith;
    const endpointB = endpointA.replace(a.config.publicUrl, b.config.publicUrl);
    const opts = { TTL: 300, topic: 'score', vapidDetails: { subject: 'mailto:dev@example.com', ...keys } };
    const older = await sendWebPush(new BrowserKeys().subscription(endpointA), '1-0', opts);
    await a.dashboard.flush();
    const newer = await sendWebPush(new BrowserKeys().subscription(endpointB), '2-0', opts);
    const idOf = (r: Response) => r.headers.get('location')!.split('/m/')[1]!;
    await vi.waitFor(
      async () => {
        await b.dashboard.flush();
        const res = await fetch(`${a.url}/dashboard/api/messages`, { headers: auth(a) });
        const byId = new Map(((await res.json()) as { messages: { id: string; outcome: string }[] }).messages.map((m) => [m.id, m.outcome]));
        expect(byId.get(idOf(older))).toBe('replaced');
        expect(byId.get(idOf(newer))).toBe('stored');
      },
      { timeout: 5000, interval: 50 },
    );
  });
});
