/**
 * autopush exactness of the websocket door end to end (issue 11), with real `ws` clients: uaid spellings,
 * Megaphone broadcasts (hello delta and errors, broadcast_subscribe, a `broadcast` frame to subscribers when a
 * version changes), ack by version alone, and idle uaids expiring at the endpoint.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeMegaphone } from '../../fakes/megaphone.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { GATEWAY_KINDS, goneOffline, type GatewayUnderTest } from '../../helpers/kinds.js';
import { channelId, post } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

describe('websocket door: autopush exactness, broadcasts set in process', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.close();
  });

  it('serves Megaphone broadcasts as autopush-rs encodes them, and pushes changes to subscribers only', async () => {
    gw.broadcasts.update({ 'remote-settings/monitor_changes': '"100"', 'test/other': 'a' });
    const sub = await PushClient.connect(gw.wsUrl);
    sub.send({ messageType: 'hello', use_webpush: true, broadcasts: { 'remote-settings/monitor_changes': '"0"', 'nobody/knows': 'v' } });
    const reply = await sub.next();
    expect(reply['broadcasts']).toEqual({ 'remote-settings/monitor_changes': '"100"', errors: { 'nobody/knows': 'Broadcast not found' } });
    // Up to date already: subscribing answers nothing.
    sub.send({ messageType: 'broadcast_subscribe', broadcasts: { 'test/other': 'a' } });
    const bystander = await PushClient.connect(gw.wsUrl);
    await bystander.hello();
    gw.broadcasts.update({ 'test/other': 'b' });
    expect(await sub.next()).toEqual({ messageType: 'broadcast', broadcasts: { 'test/other': 'b' } });
    gw.broadcasts.update({ 'remote-settings/monitor_changes': '"101"' });
    expect(await sub.next()).toEqual({ messageType: 'broadcast', broadcasts: { 'remote-settings/monitor_changes': '"101"' } });
    // The bystander subscribed to nothing: a ping round trip shows nothing was queued before it.
    bystander.send({});
    expect(await bystander.next()).toEqual({});
    sub.close();
    bystander.close();
  });

  it('a broadcast_subscribe with an older version is answered with the current one', async () => {
    gw.broadcasts.update({ 'test/late': '2' });
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    c.send({ messageType: 'broadcast_subscribe', broadcasts: { 'test/late': '1' } });
    expect(await c.next()).toEqual({ messageType: 'broadcast', broadcasts: { 'test/late': '2' } });
    c.close();
  });
});

// Against each gateway of GATEWAY_KINDS: the uaid a client resumes, an ack, and an idle uaid at the endpoint.
describe.each(GATEWAY_KINDS)('websocket door: autopush exactness ($name)', (kind) => {
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    gw = await kind.start();
  });
  afterAll(async () => {
    await gw.close();
  });

  it('resumes a uaid the client spells dashed and upper case, answering it normalised', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    await c.register(channelId());
    c.close();
    await c.closedWith;
    const dashed = `${uaid.slice(0, 8)}-${uaid.slice(8, 12)}-${uaid.slice(12, 16)}-${uaid.slice(16, 20)}-${uaid.slice(20)}`.toUpperCase();
    const again = await PushClient.connect(gw.wsUrl);
    expect(await again.hello(dashed)).toBe(uaid);
    again.close();
  });

  it('matches an ack by version alone and deletes the acked message', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    const endpoint = (await c.register(chid))['pushEndpoint'] as string;
    expect((await post(endpoint, { TTL: '600', 'Content-Encoding': 'aes128gcm' }, Buffer.from('hi'))).status).toBe(201);
    const n = await c.next();
    expect(await gw.store.countMessages(uaid, 10)).toBe(1);
    c.send({ messageType: 'ack', updates: [{ channelID: channelId(), version: n['version'], code: 100 }] });
    c.send({});
    expect(await c.next()).toEqual({});
    // The session does not wait for the delete's commit before it reads on (README "Durability"): in another process
    // the test's own read may come first.
    await vi.waitFor(async () => expect(await gw.store.countMessages(uaid, 10)).toBe(0));
    c.close();
  });

  it('a uaid not connected for PUSHGATE_USER_MAX_IDLE_DAYS is removed when a message arrives: 410', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    const endpoint = (await c.register(chid))['pushEndpoint'] as string;
    await goneOffline(gw, c, uaid);
    // Age the record past the limit (60 days by default).
    const user = (await gw.store.getUser(uaid))!;
    await gw.store.removeUser(uaid);
    await gw.store.addUser({ ...user, connectedAt: Date.now() - 61 * 86_400_000 });
    await gw.store.addChannel(uaid, { channelID: chid, keyHash: null });
    const res = await post(endpoint, { TTL: '600', 'Content-Encoding': 'aes128gcm' }, Buffer.from('late'));
    expect(res.status).toBe(410);
    expect(await res.json()).toMatchObject({ errno: 103 });
    expect(await gw.store.getUser(uaid)).toBeNull();
  });
});

// Broadcast versions from a Megaphone service reach every subscriber, whichever process holds it: each worker polls
// the service (once before it serves, then every PUSHGATE_MEGAPHONE_POLL_INTERVAL) and tells its own subscribers.
describe.each(GATEWAY_KINDS)('websocket door: Megaphone broadcasts ($name)', (kind) => {
  const megaphone = new FakeMegaphone();
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    await megaphone.start();
    megaphone.broadcasts = { 'remote-settings/monitor_changes': '"1"' };
    gw = await kind.start({ megaphoneUrl: megaphone.url, megaphoneToken: 'megaphone-token-0123456789', megaphonePollInterval: 1 });
  });
  afterAll(async () => {
    await gw.close();
    await megaphone.stop();
  });

  it('answers hello with the current version, then sends each subscriber one broadcast frame per new version', async () => {
    // Enough connections that both workers hold some (the kernel spreads accepts; nothing here depends on which).
    const subscribers = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const c = await PushClient.connect(gw.wsUrl);
        c.send({ messageType: 'hello', use_webpush: true, broadcasts: { 'remote-settings/monitor_changes': '"0"', 'test/unknown': 'a' } });
        expect((await c.next())['broadcasts']).toEqual({ 'remote-settings/monitor_changes': '"1"', errors: { 'test/unknown': 'Broadcast not found' } });
        return c;
      }),
    );
    megaphone.broadcasts = { 'remote-settings/monitor_changes': '"2"', 'test/unknown': 'b' };
    for (const c of subscribers) {
      // Only the subscribed id: an id unknown at hello was not subscribed (autopush-rs broadcast_delta).
      expect(await c.next()).toEqual({ messageType: 'broadcast', broadcasts: { 'remote-settings/monitor_changes': '"2"' } });
      // Nothing more was queued for it: a ping round trip comes back empty.
      c.send({});
      expect(await c.next()).toEqual({});
      c.close();
    }
  });
});
