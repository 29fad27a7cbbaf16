import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Metrics } from '../../../src/ops/metrics.js';
import { type Notification, openStore, type Store } from '../../../src/store/index.js';
import { ClientRegistry, type ConnectedClient } from '../../../src/webpush/connection/clients.js';
import { createPeerServer } from '../../../src/webpush/connection/peer-server.js';
import { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { testNotification } from '../../helpers/push.js';

/**
 * The endpoint → connection hop: the real peer client against the real peer API on loopback, with clients
 * that record what they were given and a real SQLite store the holder saves into. Under load (every socket busy)
 * pushes go out as batches.
 */
const uaid = (i: number) => i.toString(16).padStart(32, '0');
const note = (i: number, channelID = 'ch'): Notification => testNotification({ uaid: uaid(i), channelID, seq: i });

describe('PeerClient and the peer API', () => {
  let server: FastifyInstance | null = null;
  let client: PeerClient | null = null;
  let store: Store | null = null;
  afterEach(async () => {
    client?.close();
    await server?.close();
    await store?.close();
  });

  async function start(clients: ClientRegistry, requests: string[]) {
    server = createPeerServer({ clients, secret: 'a-secret-of-16-chars', log: pino({ level: 'silent' }), metrics: new Metrics(), tls: null });
    server.addHook('onRequest', async (req) => {
      requests.push(`${req.method} ${req.url}`);
    });
    await server.listen({ port: 0, host: '127.0.0.1' });
    const addr = server.server.address();
    return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }

  function held(i: number, delivered: string[], ready = true): ConnectedClient {
    return {
      uaid: uaid(i),
      connectedAt: 1,
      channels: new Map([['ch', null]]),
      deliverDirect(n, { onWritten, save } = {}) {
        if (!ready) return false;
        delivered.push(n.version);
        // As a session with no ack-delay estimate yet: the save begins at once.
        void save?.begin();
        setImmediate(() => onWritten?.());
        return true;
      },
      storageChanged() {},
      close() {},
    };
  }

  it('batches the pushes that wait for a busy peer, and answers each one in order', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const delivered: string[] = [];
    for (let i = 1; i <= 20; i++) clients.add(held(i, delivered, i !== 7));
    const requests: string[] = [];
    const url = await start(clients, requests);
    client = new PeerClient('a-secret-of-16-chars', 3000, null, 1);
    const outcomes = await Promise.all([
      ...Array.from({ length: 20 }, (_, k) => client!.push(url, note(k + 1))),
      client.push(url, note(99)),
      client.push(url, note(3, 'unknown-channel')),
      client.push(url, { ...note(7), seq: 70, version: 'v7-ttl0', ttl: 0 }),
    ]);
    // Client 7 cannot take a message now: the holder stored the TTL 3600 one, and left the TTL 0 one to the endpoint.
    expect(outcomes.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, k) => (k + 1 === 7 ? 'stored' : 'delivered')));
    expect(outcomes.slice(20)).toEqual(['absent', 'absent', 'busy']);
    // The holder saved every TTL > 0 message it answered for: delivered (deleted on ack) or stored.
    for (let i = 1; i <= 20; i++) expect((await store.fetchMessages(uaid(i), 0, 10, Date.now())).map((n) => n.version)).toEqual([`v${i}`]);
    expect(delivered.sort()).toEqual(
      Array.from({ length: 20 }, (_, k) => `v${k + 1}`)
        .filter((v) => v !== 'v7')
        .sort(),
    );
    // One socket: the first push went alone, the 21 that waited went as one batch.
    expect(requests).toEqual([`PUT /push/${uaid(1)}`, 'PUT /push']);
  });

  it('refuses a batch without the secret or beyond its size', async () => {
    const url = await start(new ClientRegistry(), []);
    const put = (body: unknown, auth = 'Bearer a-secret-of-16-chars') =>
      fetch(`${url}/push`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await put([note(1)], 'Bearer wrong-secret-0000000')).status).toBe(401);
    expect((await put(Array.from({ length: 65 }, (_, i) => note(i + 1)))).status).toBe(400);
    expect((await put([{ ...note(1), uaid: 'not-a-uaid' }])).status).toBe(400);
    expect(await (await put([note(1)])).json()).toEqual([404]);
    // A full batch of the largest pushes (4096 bytes of payload each) fits.
    const big = Array.from({ length: 64 }, (_, i) => ({ ...note(i + 1), data: 'A'.repeat(5462), headers: { encoding: 'aes128gcm' } }));
    expect(await (await put(big)).json()).toEqual(Array.from({ length: 64 }, () => 404));
  });
});
