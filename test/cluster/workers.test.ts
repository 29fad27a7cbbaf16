import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.js';
import { PeerClient } from '../../src/webpush/endpoint/peer-client.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { freePort, directoryInSync, metricOf, startWorkers } from '../helpers/gateway.js';
import { mongoServer, type MongoServer } from '../helpers/mongo.js';
import { buildDist, childPids, startNode, type NodeProcess, workersReplaced } from '../helpers/node-process.js';
import { channelId, post, testNotification } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/** A client of the gateway at `ws` that said hello and registered one channel, with its endpoint's token. */
async function subscribe(ws: string): Promise<{ client: PushClient; uaid: string; chid: string; token: string }> {
  const client = await PushClient.connect(ws);
  const uaid = await client.hello();
  const chid = channelId();
  const reg = await client.register(chid);
  expect(reg['status']).toBe(200);
  return { client, uaid, chid, token: (reg['pushEndpoint'] as string).split('/').pop()! };
}

/**
 * A subscriber reconnects `rounds` times with its uaid: each newer connection closes the older one (by its own
 * worker's registry, or on a takeover frame from another worker) before the push, which then reaches the newest
 * connection wherever the POST lands (TTL 0: until the close a push landing on the old one's worker could go there).
 */
async function takeovers(base: string, ws: string, rounds: number): Promise<void> {
  const s = await subscribe(ws);
  for (let i = 0; i < rounds; i++) {
    const newer = await PushClient.connect(ws);
    expect(await newer.hello(s.uaid)).toBe(s.uaid);
    expect((await s.client.closedWith).code).toBe(1000);
    expect((await post(`${base}/wpush/v1/${s.token}`, { TTL: '0' })).status).toBe(201);
    const n = await newer.next();
    expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
    newer.ack(s.chid, n['version'] as string);
    s.client = newer;
  }
  s.client.close();
}

/** A push stored for an offline client is delivered at each of `hellos` hellos (wherever they land) until acked at the last. */
async function storedUntilAcked(base: string, ws: string, hellos: number): Promise<void> {
  const s = await subscribe(ws);
  s.client.close();
  await s.client.closedWith;
  expect((await post(`${base}/wpush/v1/${s.token}`, { TTL: '60' })).status).toBe(201);
  for (let i = 0; i < hellos; i++) {
    const c = await PushClient.connect(ws);
    expect(await c.hello(s.uaid)).toBe(s.uaid);
    const n = await c.next();
    expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
    if (i === hellos - 1) c.ack(s.chid, n['version'] as string);
    c.close();
    await c.closedWith;
  }
}

/**
 * The protocol against `pushgate serve` with PUSHGATE_WORKERS=2 on one SQLite file: connections and POSTs are
 * spread over both workers by node:cluster, so pushes regularly arrive at the worker that does not hold the
 * client and must cross over the workers' mesh (directly, not through the store).
 */
describe('PUSHGATE_WORKERS=2', () => {
  let node: NodeProcess;
  let base: string;
  let ws: string;

  beforeAll(async () => {
    ({ node, base, ws } = await startWorkers('pushgate-workers-'));
  }, 60_000);

  afterAll(async () => {
    await node?.kill('SIGTERM');
  });

  const metric = (name: string, labels: string) => metricOf(base, name, labels);
  const subscriber = () => subscribe(ws);

  it('delivers every push directly, whichever worker the POST and the websocket landed on', async () => {
    const subs = await Promise.all(Array.from({ length: 8 }, () => subscriber()));
    await directoryInSync(base);
    const before = await metric('pushgate_notifications_total', 'outcome="delivered",path="direct"');
    for (const s of subs) {
      const res = await post(`${base}/wpush/v1/${s.token}`, { TTL: '60' });
      expect(res.status).toBe(201);
      const n = await s.client.next();
      expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
      s.client.ack(s.chid, n['version'] as string);
    }
    // No push took the store path: the other worker's clients were reached over the mesh.
    expect((await metric('pushgate_notifications_total', 'outcome="delivered",path="direct"')) - before).toBe(8);
    expect(await metric('pushgate_notifications_total', 'path="stored"')).toBe(0);
    // The aggregated gauge counts every worker's connections.
    expect(await metric('pushgate_connections', '')).toBeGreaterThanOrEqual(8);
    // Fresh connections (no keep-alive) reach both workers. Under SCHED_NONE the kernel picks the worker that accepts,
    // so a short run may land on one: up to 200 connections, stopping once both have answered.
    const answered = new Set<number>();
    for (let i = 0; i < 200 && answered.size < 2; i++)
      answered.add(((await (await fetch(`${base}/health`, { headers: { connection: 'close' } })).json()) as { worker: number }).worker);
    expect([...answered].sort()).toEqual([1, 2]);
    for (const s of subs) s.client.close();
  });

  it('stores for an offline client and delivers at its next hello on either worker', () => storedUntilAcked(base, ws, 2));

  // Consecutive connections alternate between the workers (node:cluster round robin); two rounds try both.
  it('a newer connection of a uaid on another worker takes over the older one', () => takeovers(base, ws, 2));

  it('an unknown channel of a client held by the other worker is refused, not stored', async () => {
    const a = await subscriber();
    const b = await subscriber();
    // Unsubscribe b's channel; pushes to it must be refused whichever worker answers.
    b.client.send({ messageType: 'unregister', channelID: b.chid });
    await expect.poll(async () => (await post(`${base}/wpush/v1/${b.token}`, { TTL: '60' })).status, { timeout: 5000 }).toBe(410);
    expect((await post(`${base}/wpush/v1/${a.token}`, { TTL: '60' })).status).toBe(201);
    expect(await a.client.next()).toMatchObject({ channelID: a.chid });
    a.client.close();
    b.client.close();
  });

  it('restarts a worker that dies; the other keeps serving', async () => {
    const [victim] = childPids(node);
    expect(victim).toBeGreaterThan(0);
    process.kill(victim!, 'SIGKILL');
    await expect.poll(() => node.output.join('').includes('worker exited; restarting'), { timeout: 5000 }).toBe(true);
    await workersReplaced(node, [victim!], 2, 10_000);
    // Every connection (whichever worker it lands on) is served again.
    await expect
      .poll(
        async () => {
          const c = await PushClient.connect(ws);
          await c.hello();
          c.close();
          return true;
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    const s = await subscriber();
    expect((await post(`${base}/wpush/v1/${s.token}`, { TTL: '60' })).status).toBe(201);
    expect(await s.client.next()).toMatchObject({ channelID: s.chid });
    s.client.close();
  });

  it('SIGTERM to the primary drains every worker and exits 0', async () => {
    const clients = await Promise.all([subscriber(), subscriber()]);
    const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
    node.child.kill('SIGTERM');
    for (const c of clients) expect((await c.client.closedWith).code).toBe(1001);
    expect(await exited).toBe(0);
  });
});

/**
 * Three workers with the directory partitioned (PUSHGATE_WORKER_DIRECTORY=partitioned; `auto` does so above 8
 * workers): each uaid's entry lives on one owner worker, so a push landing on a third worker crosses twice (to the
 * owner, then to the holder), and takeovers are decided by the owner.
 */
describe('PUSHGATE_WORKERS=3, directory partitioned', () => {
  let node: NodeProcess;
  let base: string;
  let ws: string;

  beforeAll(async () => {
    ({ node, base, ws } = await startWorkers('pushgate-partitioned-', 3, { PUSHGATE_WORKER_DIRECTORY: 'partitioned' }));
  }, 60_000);

  afterAll(async () => {
    await node?.kill('SIGTERM');
  });

  const metric = (name: string, labels = '') => metricOf(base, name, labels);
  const subscriber = () => subscribe(ws);

  it('delivers every push directly, whichever of the three workers the POST lands on, each client an entry on one owner at most', async () => {
    const subs = await Promise.all(Array.from({ length: 12 }, () => subscriber()));
    await directoryInSync(base);
    // One entry per client whose owner is another worker (about two in three), none for the rest: never two. All
    // twelve land on a worker that does not own them in (2/3)^12 ≈ 0.8 % of runs (it happened), so at most one each;
    // directoryInSync has already checked the entries against what the holders announced.
    const entries = await metric('pushgate_cluster_directory_entries');
    expect(entries).toBeLessThanOrEqual(subs.length);
    expect(entries).toBeGreaterThan(0);
    const before = await metric('pushgate_notifications_total', 'outcome="delivered",path="direct"');
    // Each POST on a fresh connection, so the workers take them in turn: pushes land on holder, owner and third alike.
    for (let round = 0; round < 3; round++) {
      for (const s of subs) {
        const res = await fetch(`${base}/wpush/v1/${s.token}`, { method: 'POST', headers: { TTL: '60', connection: 'close' } });
        expect(res.status).toBe(201);
        const n = await s.client.next();
        expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
        s.client.ack(s.chid, n['version'] as string);
      }
    }
    expect((await metric('pushgate_notifications_total', 'outcome="delivered",path="direct"')) - before).toBe(36);
    expect(await metric('pushgate_notifications_total', 'path="stored"')).toBe(0);
    for (const s of subs) s.client.close();
  });

  it('a newer connection of a uaid takes over the older one, whichever workers hold them', () => takeovers(base, ws, 3));

  it('stores for an offline client and delivers at its next hello, on any worker', () => storedUntilAcked(base, ws, 3));
});

/**
 * A fleet whose connection node runs two workers: each worker records its own peer id (`<peer URL>/worker/<n>`),
 * and the endpoint node's link for a worker is handed to it by whichever worker the kernel gives the connection to
 * (src/cluster/handoff.ts), so every push arrives at the worker holding its client and none crosses the mesh.
 */
describe('a connection node with PUSHGATE_WORKERS=2 behind an endpoint node', () => {
  let db: MongoServer;
  let store: Store;
  const nodes: NodeProcess[] = [];
  const secret = 'fleet-secret-0123456789';
  let endpointBase: string;
  let connectionBase: string;
  let connectionWs: string;
  let peerUrl: string;

  beforeAll(async () => {
    buildDist();
    db = await mongoServer();
    store = await openStore(db.url('workersfleet'));
    const [ePort, cPort, rPort] = [await freePort(), await freePort(), await freePort()];
    endpointBase = `http://127.0.0.1:${ePort}`;
    connectionBase = `http://127.0.0.1:${cPort}`;
    connectionWs = `ws://127.0.0.1:${cPort}/`;
    peerUrl = `http://127.0.0.1:${rPort}`;
    const common = {
      PUSHGATE_STORE: db.url('workersfleet'),
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
      PUSHGATE_PUBLIC_URL: endpointBase,
      PUSHGATE_ROUTER_SECRET: secret,
      PUSHGATE_HOST: '127.0.0.1',
    };
    nodes.push(await startNode({ ...common, PUSHGATE_ROLE: 'endpoint', PUSHGATE_PORT: String(ePort) }));
    nodes.push(
      await startNode(
        { ...common, PUSHGATE_ROLE: 'connection', PUSHGATE_PORT: String(cPort), PUSHGATE_ROUTER_PORT: String(rPort), PUSHGATE_WORKERS: '2' },
        'pushgate cluster listening',
      ),
    );
  }, 120_000);

  afterAll(async () => {
    for (const n of nodes) await n.kill('SIGTERM');
    await store?.close();
    await db?.stop();
  });

  /** Subscribers until both workers hold at least one (the kernel spreads connections unevenly), by recorded peer id. */
  async function subscribersOnBothWorkers(): Promise<{ subs: Awaited<ReturnType<typeof subscribe>>[]; peerIds: Map<string, string> }> {
    const subs = [];
    const peerIds = new Map<string, string>();
    while (subs.length < 6 || new Set(peerIds.values()).size < 2) {
      if (subs.length >= 40) throw new Error(`40 connections and the workers holding them: ${[...new Set(peerIds.values())].join(', ')}`);
      const s = await subscribe(connectionWs);
      subs.push(s);
      peerIds.set(s.uaid, (await store.getUser(s.uaid))!.peerId!);
    }
    await directoryInSync(connectionBase);
    return { subs, peerIds };
  }

  it("records each worker's own peer id and delivers every push to the holder over its own link", async () => {
    const { subs, peerIds } = await subscribersOnBothWorkers();
    expect(new Set(peerIds.values())).toEqual(new Set([`${peerUrl}/worker/1`, `${peerUrl}/worker/2`]));
    const here = await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="here"');
    for (const s of subs) {
      expect((await post(`${endpointBase}/wpush/v1/${s.token}`, { TTL: '0' })).status).toBe(201);
      // TTL 0 is never stored: it arrives only if the hop reached the worker holding the client.
      const n = await s.client.next();
      expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid });
      s.client.ack(s.chid, n['version'] as string);
    }
    expect((await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="here"')) - here).toBe(subs.length);
    expect(await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="sibling"')).toBe(0);
    // The endpoint node's first pushes: one link per worker, never one per push.
    expect(await metricOf(endpointBase, 'pushgate_peer_links_total', 'result="open"')).toBe(2);
    for (const s of subs) s.client.close();
  });

  it('hands a link to the worker it names, whichever worker accepts it', async () => {
    const { subs, peerIds } = await subscribersOnBothWorkers();
    const here = await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="here"');
    // 24 links, each dialled afresh: the kernel gives about half of them to the worker they do not name. Had those
    // been served where they landed, their pushes would count as `sibling` (the chance that none lands wrong: 2^-24).
    const dials = 24;
    // Dial and answer may take their time on a loaded machine (three processes pass each link on): this test is
    // about where a link lands, not about the 3 s a peer link gives a node by default.
    const patient = () => new PeerClient(secret, 15_000);
    for (let i = 0; i < dials; i++) {
      const s = subs[i % subs.length]!;
      const peers = patient();
      const outcome = await peers.push(peerIds.get(s.uaid)!, testNotification({ uaid: s.uaid, channelID: s.chid, seq: i + 1, ttl: 0 }));
      peers.close();
      expect(outcome).toBe('delivered');
      const n = await s.client.next();
      expect(n).toMatchObject({ messageType: 'notification', channelID: s.chid, version: `v${i + 1}` });
      s.client.ack(s.chid, n['version'] as string);
    }
    expect((await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="here"')) - here).toBe(dials);
    expect(await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="sibling"')).toBe(0);
    // The node's origin alone (`GET /link`) still works: the worker that accepts it passes each push over the mesh.
    const s = subs[0]!;
    const peers = patient();
    expect(await peers.push(peerUrl, testNotification({ uaid: s.uaid, channelID: s.chid, seq: 100, ttl: 0 }))).toBe('delivered');
    peers.close();
    expect(await s.client.next()).toMatchObject({ messageType: 'notification', version: 'v100' });
    for (const x of subs) x.client.close();
  });

  it("a worker that dies: its clients' pushes are stored until they reconnect, then reach them over a link to wherever they are", async () => {
    const { subs, peerIds } = await subscribersOnBothWorkers();
    const [onOne, onTwo] = [1, 2].map((w) => subs.find((s) => peerIds.get(s.uaid) === `${peerUrl}/worker/${w}`)!);
    // The links to both workers are open.
    for (const s of [onOne!, onTwo!]) {
      expect((await post(`${endpointBase}/wpush/v1/${s.token}`, { TTL: '60' })).status).toBe(201);
      const n = await s.client.next();
      s.client.ack(s.chid, n['version'] as string);
    }
    // Their acks' deletes committed: a message acked just before its worker dies may come again (README "A fleet of
    // machines"), which is not what this test is about.
    for (const s of [onOne!, onTwo!]) await expect.poll(() => store.countMessages(s.uaid, 10), { timeout: 5000 }).toBe(0);
    const connection = nodes[1]!;
    const victim = childPids(connection).find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('PUSHGATE_WORKER_INDEX=2'))!;
    process.kill(victim, 'SIGKILL');
    expect((await onTwo!.client.closedWith).code).toBe(1006);
    // Accepted and stored: the link to worker 2 is gone, and no worker holds the client.
    expect((await post(`${endpointBase}/wpush/v1/${onTwo!.token}`, { TTL: '60', 'Content-Encoding': 'aes128gcm' }, Buffer.from('kept'))).status).toBe(201);
    // Worker 1's clients are served throughout.
    expect((await post(`${endpointBase}/wpush/v1/${onOne!.token}`, { TTL: '0' })).status).toBe(201);
    expect(await onOne!.client.next()).toMatchObject({ channelID: onOne!.chid });
    await workersReplaced(connection, [victim], 2, 10_000);
    const back = await PushClient.connect(connectionWs);
    expect(await back.hello(onTwo!.uaid)).toBe(onTwo!.uaid);
    const stored = await back.next();
    expect(stored).toMatchObject({ messageType: 'notification', channelID: onTwo!.chid, data: Buffer.from('kept').toString('base64url') });
    back.ack(onTwo!.chid, stored['version'] as string);
    // Wherever it reconnected (worker 1, or worker 2's successor through a new handed link), a TTL 0 push reaches it.
    await directoryInSync(connectionBase);
    const crossed = await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="sibling"');
    expect((await post(`${endpointBase}/wpush/v1/${onTwo!.token}`, { TTL: '0' })).status).toBe(201);
    expect(await back.next()).toMatchObject({ messageType: 'notification', channelID: onTwo!.chid });
    expect(await metricOf(connectionBase, 'pushgate_peer_link_pushes_total', 'client="sibling"')).toBe(crossed);
    back.close();
    for (const s of subs) s.client.close();
  });

  it('drains and exits 0 with handed links open', async () => {
    // The endpoint node's links to both workers are open, some handed over by the other worker. node:child_process
    // counts a socket sent away as open on the sender's server until the receiver closes its copy: the primary's
    // copy is closed once passed on (primary.ts passLink), or the accepting worker's close would never end.
    expect(await metricOf(endpointBase, 'pushgate_peer_links_total', 'result="open"')).toBeGreaterThan(0);
    const connection = nodes.pop()!;
    await connection.kill('SIGTERM');
    expect(connection.child.exitCode).toBe(0);
  });
});

/**
 * What a 201 promises with several workers (README "Durability"): a TTL > 0 message accepted for a client held by
 * either worker, wherever the POST landed, survives a SIGKILL of every process of the cluster before the client
 * acks, and is read again by the client's next hello after a restart on the same SQLite file.
 */
describe('PUSHGATE_WORKERS=2 durability: SIGKILL of the whole cluster', () => {
  const procs: NodeProcess[] = [];
  beforeAll(() => {
    buildDist();
  }, 120_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  });

  it('every accepted, unacked message crossing workers is redelivered after kill -9 and restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-workers-durable-'));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const ws = `ws://127.0.0.1:${port}/`;
    const env = {
      PUSHGATE_WORKERS: '2',
      PUSHGATE_PORT: String(port),
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_PUBLIC_URL: base,
      PUSHGATE_DATA_DIR: dir,
      PUSHGATE_STORE: `sqlite:${dir}/db`,
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
    };
    const first = await startNode(env, 'pushgate cluster listening');
    procs.push(first);
    const subs: { client: PushClient; uaid: string; chid: string; token: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const client = await PushClient.connect(ws);
      const uaid = await client.hello();
      const chid = channelId();
      const reg = await client.register(chid);
      subs.push({ client, uaid, chid, token: (reg['pushEndpoint'] as string).split('/').pop()! });
    }
    await directoryInSync(base);
    // Each POST on a fresh connection: the workers accept in turn as the kernel hands them out, so many cross over.
    const perClient = 3;
    for (const s of subs) {
      for (let i = 0; i < perClient; i++) {
        const res = await post(`${base}/wpush/v1/${s.token}`, { TTL: '600', 'Content-Encoding': 'aes128gcm', connection: 'close' }, Buffer.from(`m${i}`));
        expect(res.status).toBe(201);
      }
      // Delivered (not acked).
      for (let i = 0; i < perClient; i++) expect(await s.client.next()).toMatchObject({ messageType: 'notification', channelID: s.chid });
    }
    const text = await (await fetch(`${base}/metrics`)).text();
    const sample = (name: string, ...labels: string[]) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(name) && labels.every((x) => l.includes(x)))
          ?.split(' ')
          .pop(),
      );
    // Every push was accepted for a connected client: sent direct (over the mesh when the other worker held it), or,
    // when its session was reading storage at that moment, saved and read from there (a session reading storage
    // queues new messages behind it to keep their order: session.ts deliverDirect). Either way it was written
    // before its 201, which is what the SIGKILL below tests.
    const direct = sample('pushgate_notifications_total{', 'outcome="accepted"', 'path="direct"');
    const stored = sample('pushgate_notifications_total{', 'outcome="accepted"', 'path="stored"') || 0;
    expect(direct + stored).toBe(subs.length * perClient);
    expect(direct).toBeGreaterThan(0);
    // Two workers, replicated: each client is an entry on the other worker.
    expect(sample('pushgate_cluster_directory_entries ')).toBe(subs.length);

    const workers = childPids(first);
    expect(workers).toHaveLength(2);
    for (const w of workers) process.kill(w, 'SIGKILL');
    await first.kill('SIGKILL');
    await Promise.all(subs.map((s) => s.client.closedWith));

    procs.push(await startNode(env, 'pushgate cluster listening'));
    for (const s of subs) {
      const again = await PushClient.connect(ws);
      expect(await again.hello(s.uaid)).toBe(s.uaid);
      const seen = new Set<string>();
      while (seen.size < perClient) {
        const n = await again.next();
        if (n['messageType'] !== 'notification') continue;
        seen.add(Buffer.from(n['data'] as string, 'base64url').toString());
        again.ack(s.chid, n['version'] as string);
      }
      expect([...seen].sort()).toEqual(['m0', 'm1', 'm2']);
      again.close();
    }
  });
});
