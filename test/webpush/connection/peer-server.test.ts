// The internal peer link (src/webpush/connection/peer-server.ts) and its client (src/webpush/endpoint/peer-client.ts)
// in process: a gateway with its internal port, a real websocket client on it, and PeerClient calls as an endpoint
// node makes them, and the endpoint's router against a holder that saved and never answered. test/interop/fleet.test.ts
// runs the same API across separate processes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/ops/metrics.js';
import { type Notification, openStore } from '../../../src/store/index.js';
import { ClientRegistry } from '../../../src/webpush/connection/clients.js';
import { WebPushRouter } from '../../../src/webpush/endpoint/router.js';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { freePort, startGateway, type TestGateway } from '../../helpers/gateway.js';
import { channelId, testNotification } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

const SECRET = 'peer-secret-0123456789';

describe('internal peer link', () => {
  let gw: TestGateway;
  let peerUrl: string;
  beforeAll(async () => {
    const routerPort = await freePort();
    peerUrl = `http://127.0.0.1:${routerPort}`;
    gw = await startGateway({ routerPort, routerSecret: SECRET, peerUrl });
  });
  afterAll(() => gw.close());

  const notification = (uaid: string, chid: string): Notification => testNotification({ uaid, channelID: chid, seq: 1, version: 'v-direct' });

  it('writes a notification to the client it holds and saves it until the ack, and says absent for anyone else', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const chid = channelId();
    await c.register(chid);
    const peers = new PeerClient(SECRET);
    expect(await peers.push(peerUrl, notification(uaid, chid))).toBe('delivered');
    expect(await c.next()).toMatchObject({ messageType: 'notification', channelID: chid, version: 'v-direct' });
    // This node saved it before answering, and deletes it when the client acks.
    expect((await gw.store.fetchMessages(uaid, 0, 10, Date.now())).map((n) => n.version)).toEqual(['v-direct']);
    c.ack(chid, 'v-direct');
    for (let i = 0; i < 200 && (await gw.store.countMessages(uaid, 10)) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await gw.store.countMessages(uaid, 10)).toBe(0);
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
    const res = await fetch(`${peerUrl}/link`);
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

  it('a holder that saved and never answered (as one that died then) leaves one copy, which reaches the client after reconnect', async () => {
    // The connection node's store commits every save, then, while `hang` is set, never answers it: the node's
    // answer to the hop waits for that commit, so the endpoint's call times out exactly as if the node had died
    // between its save and its answer. The endpoint node is a router in this process with its own connection to
    // the same SQLite file, as two nodes sharing one store.
    const file = join(mkdtempSync(join(tmpdir(), 'pushgate-holder-')), 'db.sqlite');
    const store = await openStore(`sqlite:${file}`);
    const holderBacking = await openStore(`sqlite:${file}`);
    const save = holderBacking.saveMessage.bind(holderBacking);
    let hang = false;
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    const holderStore = new Proxy(holderBacking, {
      get(target, prop, receiver) {
        if (prop === 'saveMessage')
          return async (n: Notification) => {
            await save(n);
            if (hang) await released;
          };
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const routerPort = await freePort();
    const holderUrl = `http://127.0.0.1:${routerPort}`;
    const holder = await startGateway({ routerPort, routerSecret: SECRET, peerUrl: holderUrl }, { store: holderStore });
    const peers = new PeerClient(SECRET, 300);
    try {
      const c = await PushClient.connect(holder.wsUrl);
      const uaid = await c.hello();
      const chid = channelId();
      await c.register(chid);
      const router = new WebPushRouter(
        store,
        new ClientRegistry(),
        new MultiFernet([FernetKey.generate()]),
        new Metrics(),
        100,
        'http://endpoint.internal',
        peers,
      );
      hang = true;
      const result = await router.route({ uaid, channelID: chid, ttl: 60, topic: null, urgency: 'normal', data: null, headers: null });
      // No answer in time: the endpoint saved it too, by the same key; the 201 is for a stored message. The node
      // may still hold the client, so its route stays.
      expect(result.path).toBe('stored');
      expect((await store.getUser(uaid))?.peerId).toBe(holderUrl);
      expect((await c.next()).version).toBe(result.messageId);
      expect((await store.fetchMessages(uaid, 0, 10, Date.now())).map((n) => n.version)).toEqual([result.messageId]);
      // The client goes away without acking; at its next hello it gets the message from storage, once.
      c.close();
      const again = await PushClient.connect(holder.wsUrl);
      await again.hello(uaid);
      expect(await again.receiveAndAck()).toMatchObject({ messageType: 'notification', channelID: chid, version: result.messageId });
      release();
      again.close();
    } finally {
      release();
      peers.close();
      await holder.close();
      await store.close();
    }
  });

  it('answers absent when the peer cannot be reached in time', async () => {
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    expect(await new PeerClient(SECRET, 500).push(unreachable, notification('f'.repeat(32), channelId()))).toBe('absent');
  });
});
