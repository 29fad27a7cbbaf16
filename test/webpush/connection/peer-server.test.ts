// The internal peer API (src/webpush/connection/peer-server.ts) and its client (src/webpush/endpoint/peer-client.ts)
// in process: a gateway with its internal port, a real websocket client on it, and PeerClient calls as an endpoint
// node makes them. test/interop/fleet.test.ts runs the same API across separate processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Notification } from '../../../src/store/index.js';
import { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { freePort, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { channelId } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

const SECRET = 'peer-secret-0123456789';

describe('internal peer API', () => {
  let gw: TestGateway;
  let peerUrl: string;
  beforeAll(async () => {
    const routerPort = await freePort();
    peerUrl = `http://127.0.0.1:${routerPort}`;
    gw = await startGateway({ routerPort, routerSecret: SECRET, peerUrl });
  });
  afterAll(() => gw.close());

  const notification = (uaid: string, chid: string): Notification => ({
    uaid,
    channelID: chid,
    seq: 1,
    version: 'v-direct',
    ttl: 60,
    expiry: Date.now() + 60_000,
    topic: null,
    urgency: 'normal',
    data: null,
    headers: null,
    timestamp: Date.now(),
  });

  it('writes a notification to the client it holds and saves it until the ack, and says absent for anyone else', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    await c.register(chid);
    const peers = new PeerClient(SECRET);
    expect(await peers.push(peerUrl, notification(uaid, chid))).toBe('delivered');
    expect(await c.next()).toMatchObject({ messageType: 'notification', channelID: chid, version: 'v-direct' });
    expect(await peers.push(peerUrl, notification(uaid, channelId()))).toBe('absent');
    expect(await peers.push(peerUrl, notification('f'.repeat(32), chid))).toBe('absent');
    expect(await peers.notify(peerUrl, uaid)).toBe(true);
    expect(await peers.notify(peerUrl, 'f'.repeat(32))).toBe(false);
    c.close();
  });

  it('refuses callers without the shared secret', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    await c.register(chid);
    expect(await new PeerClient('wrong-secret-0123456789').push(peerUrl, notification(uaid, chid))).toBe('absent');
    expect(await new PeerClient(null).notify(peerUrl, uaid)).toBe(false);
    const res = await fetch(`${peerUrl}/notif/${uaid}`, { method: 'PUT' });
    expect(res.status).toBe(401);
    c.close();
  });

  it('drops a connection older than the one that took over elsewhere, and only that', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const peers = new PeerClient(SECRET);
    expect(await peers.dropOlder(peerUrl, uaid, 0)).toBe(true);
    // Still served: a register after the call gets its answer.
    expect((await c.register(channelId()))['status']).toBe(200);
    expect(await peers.dropOlder(peerUrl, uaid, Date.now() + 60_000)).toBe(true);
    expect((await c.closedWith).code).toBe(1000);
  });

  it('answers absent when the peer cannot be reached in time', async () => {
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    expect(await new PeerClient(SECRET, 500).push(unreachable, notification('f'.repeat(32), channelId()))).toBe('absent');
  });
});
