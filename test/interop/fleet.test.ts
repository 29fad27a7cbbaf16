import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { freePort } from '../helpers/gateway.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';
import { buildDist, startNode, type NodeProcess } from '../helpers/node-process.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/**
 * A fleet on loopback: one endpoint node and two connection nodes, each its own process, sharing one
 * MongoDB-wire server, as autopush's architecture splits them.
 */
describe('scale-out: endpoint and connection nodes sharing MongoDB', () => {
  let db: MongoServer;
  const nodes: NodeProcess[] = [];
  let endpointUrl: string;
  const conn: { port: number; routerPort: number; proc: NodeProcess | null; env: Record<string, string> }[] = [];
  const secret = 'fleet-secret-0123456789';
  const cryptoKey = FernetKey.generate();

  async function startConnection(i: number): Promise<void> {
    conn[i]!.proc = await startNode(conn[i]!.env);
    nodes.push(conn[i]!.proc);
  }

  beforeAll(async () => {
    buildDist();
    db = await mongoServer();
    const store = db.url('fleet');
    const port = await freePort();
    endpointUrl = `http://127.0.0.1:${port}`;
    const common = {
      PUSHGATE_STORE: store,
      PUSHGATE_CRYPTO_KEY: cryptoKey,
      PUSHGATE_PUBLIC_URL: endpointUrl,
      PUSHGATE_ROUTER_SECRET: secret,
      PUSHGATE_HOST: '127.0.0.1',
    };
    nodes.push(await startNode({ ...common, PUSHGATE_ROLE: 'endpoint', PUSHGATE_PORT: String(port) }));
    for (let i = 0; i < 2; i++) {
      const p = await freePort();
      const r = await freePort();
      conn.push({
        port: p,
        routerPort: r,
        proc: null,
        env: { ...common, PUSHGATE_ROLE: 'connection', PUSHGATE_PORT: String(p), PUSHGATE_ROUTER_PORT: String(r) },
      });
      await startConnection(i);
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await db?.stop();
  });

  const wsUrl = (i: number) => `ws://127.0.0.1:${conn[i]!.port}/`;
  const text = (n: Record<string, unknown>) => Buffer.from(n['data'] as string, 'base64url').toString();

  it('keeps the internal port apart from the public one and protected by the secret', async () => {
    const internal = `http://127.0.0.1:${conn[0]!.routerPort}/link`;
    expect((await fetch(internal, { method: 'PUT' })).status).toBe(401);
    expect((await fetch(internal, { method: 'PUT', headers: { authorization: 'Bearer wrong-secret-000000' } })).status).toBe(401);
    expect((await fetch(internal, { method: 'PUT', headers: { authorization: `Bearer ${secret}` } })).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${conn[0]!.port}/link`, { method: 'PUT' })).status).toBe(404);
    // An endpoint node has no websocket door; a connection node has no push endpoints.
    expect((await post(`http://127.0.0.1:${conn[0]!.port}/wpush/v1/x`, { TTL: '1' })).status).toBe(404);
  });

  it('routes a POST taken by the endpoint node to the client on a connection node; a reconnect elsewhere drops the old socket', async () => {
    const c1 = await PushClient.connect(wsUrl(0));
    const uaid = await c1.hello();
    const chid = channelId();
    const endpoint = (await c1.register(chid))['pushEndpoint'] as string;
    expect(endpoint.startsWith(`${endpointUrl}/wpush/v1/`)).toBe(true);
    expect((await post(endpoint, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, 'via the hop')).status).toBe(201);
    const n = await c1.next();
    expect(text(n)).toBe('via the hop');
    c1.ack(chid, n['version'] as string);
    const metrics = await (await fetch(`${endpointUrl}/metrics`)).text();
    expect(metrics).toMatch(/pushgate_notifications_total\{outcome="accepted",path="direct"\} [1-9]/);

    const c2 = await PushClient.connect(wsUrl(1));
    expect(await c2.hello(uaid)).toBe(uaid);
    expect((await c1.closedWith).code).toBe(1000);
    expect((await post(endpoint, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, 'now on node 2')).status).toBe(201);
    const moved = await c2.next();
    expect(text(moved)).toBe('now on node 2');
    c2.ack(chid, moved['version'] as string);
    // The route that just worked is cached: the next pushes to this client read nothing from the store.
    const getUsers = async () =>
      Number(/pushgate_store_operations_total\{op="getUser"\} (\d+)/.exec(await (await fetch(`${endpointUrl}/metrics`)).text())?.[1] ?? 0);
    const before = await getUsers();
    for (const body of ['cached 1', 'cached 2']) {
      expect((await post(endpoint, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, body)).status).toBe(201);
      const m = await c2.next();
      expect(text(m)).toBe(body);
      c2.ack(chid, m['version'] as string);
    }
    expect(await getUsers()).toBe(before);
    // Every hop above went over persistent peer links: one opened to each connection node, none refused.
    const links = (await (await fetch(`${endpointUrl}/metrics`)).text()).split('\n').filter((l) => l.startsWith('pushgate_peer_links_total{'));
    expect(links).toEqual(['pushgate_peer_links_total{result="open"} 2']);
    c2.close();
  });

  /** Sends `count` messages, retrying 503s as a sender must; calls `midway` once the client has `at` of them. */
  async function runTraffic(count: number, at: number, midway: () => Promise<void>) {
    let c = await PushClient.connect(wsUrl(1));
    const uaid = await c.hello();
    const chid = channelId();
    const endpoint = (await c.register(chid))['pushEndpoint'] as string;
    const received: string[] = [];
    const versions = new Map<string, Set<string>>();
    const acked = new Set<string>();
    const ackOrder: string[] = [];
    /** The last acks sent before the midway event: a node killed then may not have processed them yet. */
    let lateAcks = new Set<string>();
    /** Messages whose POST was still unanswered when the midway event began: in flight at that moment. */
    const inFlight = new Set<string>();
    const pending = new Set<string>();
    let midwayDone = null as Promise<void> | null; // assigned in a callback: no narrowing to null
    const receive = async (client: PushClient) => {
      for (;;) {
        const n = await client.next(30_000).catch(() => null);
        if (!n) return;
        const m = text(n);
        received.push(m);
        versions.set(m, (versions.get(m) ?? new Set()).add(n['version'] as string));
        if (received.length === at) {
          for (const p of pending) inFlight.add(p);
          lateAcks = new Set(ackOrder.slice(-8));
          midwayDone = midway();
        } else {
          client.ack(chid, n['version'] as string);
          if (!midwayDone) {
            acked.add(m);
            ackOrder.push(m);
          }
        }
        if (new Set(received).size === count) return;
      }
    };
    const receiving = receive(c);
    let accepted = 0;
    const send = async (i: number) => {
      pending.add(`m${i}`);
      for (;;) {
        const res = await post(endpoint, { TTL: '600', 'Content-Encoding': 'aes128gcm' }, `m${i}`).catch(() => null);
        if (res?.status === 201) {
          pending.delete(`m${i}`);
          return accepted++;
        }
        expect(res === null || res.status === 503).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Four senders at a time, so messages are in flight whatever happens midway.
    for (let i = 0; i < count; i += 4) {
      await Promise.all([i, i + 1, i + 2, i + 3].filter((j) => j < count).map(send));
      if (midwayDone) await midwayDone;
    }
    await receiving;
    if (new Set(received).size < count) {
      // The node holding the client died: reconnect to the surviving node, as Firefox would.
      c = await PushClient.connect(wsUrl(0));
      expect(await c.hello(uaid)).toBe(uaid);
      await receive(c);
    }
    c.close();
    expect(accepted).toBe(count);
    const all = Array.from({ length: count }, (_, i) => `m${i}`);
    expect(new Set(received)).toEqual(new Set(all));
    for (const m of all) {
      if (received.filter((r) => r === m).length === 1) continue;
      // A repeat is allowed only for a message the client had not acked, one in flight when the node
      // went away (it may have reached the client just before the node died, unconfirmed), or one of the
      // last few acked just before (messages are durable until the ack's delete commits, and the killed node
      // may not have processed that ack yet); it carries the same version, so the browser drops it as a duplicate.
      expect(!acked.has(m) || inFlight.has(m) || lateAcks.has(m), `${m} repeated after it was acked`).toBe(true);
      expect(versions.get(m)!.size).toBe(1);
    }
    return received;
  }

  it('loses no message when a connection node is killed with SIGKILL in flight', async () => {
    await runTraffic(40, 15, async () => {
      await conn[1]!.proc!.kill('SIGKILL');
    });
    await startConnection(1);
  }, 120_000);

  it('loses no accepted message when MongoDB restarts mid-run', async () => {
    if (db.kind === 'external') return expect(db.kind).toBe('external');
    await runTraffic(30, 10, async () => {
      await db.restart();
    });
  }, 120_000);
});
