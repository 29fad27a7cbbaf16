import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

describe('a gateway on MongoDB', () => {
  let server: MongoServer;
  let gw: TestGateway;
  beforeAll(async () => {
    server = await mongoServer();
    gw = await startGateway({ store: server.url('gateway') });
  });
  afterAll(async () => {
    await gw?.close();
    await server?.stop();
  });

  it('delivers directly, stores for an offline client, and drains after hello', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    const endpoint = (await c.register(chid))['pushEndpoint'] as string;
    expect((await post(endpoint, { TTL: '60' })).status).toBe(201);
    const direct = await c.next();
    c.ack(chid, direct['version'] as string);
    c.close();
    await vi.waitFor(() => expect(gw.clients.get(uaid)).toBeUndefined());
    for (const t of ['a', 'b']) expect((await post(endpoint, { TTL: '60', Topic: t })).status).toBe(201);
    expect((await post(endpoint, { TTL: '60', Topic: 'a' })).status).toBe(201);
    const again = await PushClient.connect(gw.wsUrl);
    expect(await again.hello(uaid)).toBe(uaid);
    const got = [await again.next(), await again.next()];
    for (const n of got) again.ack(chid, n['version'] as string);
    await vi.waitFor(async () => expect(await gw.store.countMessages(uaid, 10)).toBe(0));
    again.close();
  });

  it('answers 503 (never 404/410) during an outage, keeps websocket clients, and recovers by itself', async () => {
    if (server.kind === 'external') return expect(server.kind).toBe('external');
    const online = await PushClient.connect(gw.wsUrl);
    await online.hello();
    const onlineEndpoint = (await online.register(channelId()))['pushEndpoint'] as string;
    const offline = await PushClient.connect(gw.wsUrl);
    const offlineUaid = await offline.hello();
    const offlineEndpoint = (await offline.register(channelId()))['pushEndpoint'] as string;
    offline.close();
    await vi.waitFor(() => expect(gw.clients.get(offlineUaid)).toBeUndefined());

    await server.stop();
    const during = await post(offlineEndpoint, { TTL: '60' });
    expect(during.status).toBe(503);
    expect(during.headers.get('retry-after')).toBeTruthy();
    expect(await during.json()).toMatchObject({ errno: 201 });
    expect((await fetch(`${gw.url}/__heartbeat__`)).status).toBe(503);
    // A connected client still gets its pushes: that path needs no storage.
    expect((await post(onlineEndpoint, { TTL: '60' })).status).toBe(201);
    expect(await online.next()).toMatchObject({ messageType: 'notification' });
    online.send({ messageType: 'register', channelID: channelId() });
    expect(await online.next()).toMatchObject({ messageType: 'register', status: 500 });

    await server.start();
    await vi.waitFor(async () => expect((await post(offlineEndpoint, { TTL: '60' })).status).toBe(201), { timeout: 20_000, interval: 200 });
    expect(online.ws.readyState).toBe(1);
    const back = await PushClient.connect(gw.wsUrl);
    expect(await back.hello(offlineUaid)).toBe(offlineUaid);
    expect(await back.next()).toMatchObject({ messageType: 'notification' });
    back.close();
    online.close();
  }, 60_000);
});
