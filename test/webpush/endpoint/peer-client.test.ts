import http from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { encodeFrame, FrameReader, type PeerFrame } from '../../../src/cluster/frames.js';
import { Metrics } from '../../../src/ops/metrics.js';
import { type Notification, openStore, type Store } from '../../../src/store/index.js';
import { ClientRegistry, type ConnectedClient, type DirectSave } from '../../../src/webpush/connection/clients.js';
import { createPeerServer } from '../../../src/webpush/connection/peer-server.js';
import { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { LINK_MAX_FRAME, LINK_MAX_INFLIGHT, LINK_PROTOCOL, workerPeerId } from '../../../src/webpush/protocol/peer-link.js';
import type { LinkHandoff } from '../../../src/cluster/handoff.js';
import { freePort, logCapture } from '../../helpers/gateway.js';
import { testNotification } from '../../helpers/push.js';

/**
 * The endpoint → connection hop: the real peer client against the real peer link on loopback, with clients that
 * record what they were given and a real SQLite store the holder saves into; and the link attacked with raw
 * sockets, as a peer that is buggy or not a peer at all.
 */
const SECRET = 'a-secret-of-16-chars';
const uaid = (i: number) => i.toString(16).padStart(32, '0');
const note = (i: number, channelID = 'ch'): Notification => testNotification({ uaid: uaid(i), channelID, seq: i });

describe('PeerClient and the peer link', () => {
  let server: FastifyInstance | null = null;
  let client: PeerClient | null = null;
  let store: Store | null = null;
  const sockets: Socket[] = [];
  afterEach(async () => {
    client?.close();
    for (const s of sockets.splice(0)) s.destroy();
    await server?.close();
    await store?.close();
    server = client = store = null;
  });

  /** Starts the peer server; `upgrades` counts the links opened to it. */
  async function start(clients: ClientRegistry, upgrades = { n: 0 }, port = 0, handoff: LinkHandoff | null = null) {
    server = createPeerServer({ clients, secret: SECRET, log: pino({ level: 'silent' }), metrics: new Metrics(), tls: null, handoff });
    server.server.on('upgrade', () => upgrades.n++);
    await server.listen({ port, host: '127.0.0.1' });
    const bound = (server.server.address() as AddressInfo).port;
    return { url: `http://127.0.0.1:${bound}`, port: bound };
  }

  function held(i: number, delivered: string[], opts: { ready?: boolean; saves?: DirectSave[] } = {}): ConnectedClient {
    return {
      uaid: uaid(i),
      connectedAt: 1,
      channels: new Map([['ch', null]]),
      deliverDirect(n, { onWritten, save } = {}) {
        if (opts.ready === false) return false;
        delivered.push(n.version);
        // As a session with no ack-delay estimate yet the save begins at once; one that waits for acks keeps it.
        if (opts.saves && save) opts.saves.push(save);
        else void save?.begin();
        setImmediate(() => onWritten?.());
        return true;
      },
      storageChanged() {},
      close() {},
    };
  }

  /** An upgraded raw link to the server, and the answers it reads. */
  async function rawLink(port: number, headers: Record<string, string> = {}, path = '/link') {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      headers: { connection: 'Upgrade', upgrade: LINK_PROTOCOL, authorization: `Bearer ${SECRET}`, ...headers },
    });
    const socket = await new Promise<Socket>((resolve, reject) => {
      req.on('upgrade', (_res, s: Socket) => resolve(s));
      req.on('response', (res) => reject(new Error(`status ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    sockets.push(socket);
    const answers: PeerFrame[] = [];
    const reader = new FrameReader();
    socket.on('data', (c: Buffer) => answers.push(...reader.push(c)));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    return { socket, answers, closed };
  }

  it('carries a burst of pushes on one link and answers each one', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const delivered: string[] = [];
    for (let i = 1; i <= 20; i++) clients.add(held(i, delivered, { ready: i !== 7 }));
    const upgrades = { n: 0 };
    const { url } = await start(clients, upgrades);
    client = new PeerClient(SECRET, 3000, null);
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
    expect(await client.notify(url, uaid(1))).toBe(true);
    expect(await client.notify(url, uaid(99))).toBe(false);
    // Every call above went over the one link opened by the first.
    expect(upgrades.n).toBe(1);
  });

  it('opens the link again after it closes', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    clients.add(held(1, []));
    const upgrades = { n: 0 };
    const links: Socket[] = [];
    const { url } = await start(clients, upgrades);
    server!.server.on('upgrade', (_req, s: Socket) => links.push(s));
    client = new PeerClient(SECRET, 3000, null);
    expect(await client.push(url, note(1))).toBe('delivered');
    links[0]!.destroy();
    await expect.poll(() => client!.push(url, { ...note(1), seq: 2, version: 'v1b' })).toBe('delivered');
    expect(upgrades.n).toBe(2);
  });

  it('refuses a link without the secret, and anything but the link', async () => {
    const { port } = await start(new ClientRegistry());
    await expect(rawLink(port, { authorization: 'Bearer wrong-secret-0000000' })).rejects.toThrow('status 401');
    await expect(rawLink(port, { authorization: '' })).rejects.toThrow('status 401');
    await expect(rawLink(port, { upgrade: 'websocket' })).rejects.toThrow('status 404');
    const put = (auth: string) => fetch(`http://127.0.0.1:${port}/push/${uaid(1)}`, { method: 'PUT', headers: { authorization: auth } });
    expect((await put('Bearer wrong-secret-0000000')).status).toBe(401);
    expect((await put(`Bearer ${SECRET}`)).status).toBe(404);
    // A client with the wrong secret gets `absent` for its push, not an exception.
    client = new PeerClient('wrong-secret-0000000', 3000, null);
    expect(await client.push(`http://127.0.0.1:${port}`, note(1))).toBe('absent');
  });

  it('hands a link for another worker to it, serves one it cannot hand over, and refuses any other target', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const delivered: string[] = [];
    clients.add(held(1, delivered));
    // As worker 1 of 3 whose siblings are this same process: worker 2 takes what is handed to it, worker 3 is down.
    const handed: number[] = [];
    let serveHanded: ((socket: Socket, head: Buffer) => void) | null = null;
    const handoff: LinkHandoff = {
      pass(to, socket, head) {
        if (to !== 2) return false;
        handed.push(to);
        setImmediate(() => serveHanded!(socket, head));
        return true;
      },
      onLink(serve) {
        serveHanded = serve;
      },
    };
    const { url, port } = await start(clients, { n: 0 }, 0, handoff);
    for (const [peerId, version, passed] of [
      [workerPeerId(url, 2), 'v-w2', [2]],
      [workerPeerId(url, 3), 'v-w3', []],
      [url, 'v-any', []],
    ] as const) {
      handed.length = 0;
      const peers = new PeerClient(SECRET, 3000, null);
      expect(await peers.push(peerId, { ...note(1), version })).toBe('delivered');
      peers.close();
      expect(handed).toEqual(passed);
    }
    expect(delivered).toEqual(['v-w2', 'v-w3', 'v-any']);
    for (const path of ['/worker/0/link', '/worker/257/link', '/worker/02/link', '/worker/2/link/', '/worker/two/link', '/worker/2', '/link?x=1', '/links']) {
      await expect(rawLink(port, {}, path), path).rejects.toThrow('status 404');
    }
    expect(handed).toEqual([]);
  });

  it('counts every dial by result, and logs a link lost once and its return once', async () => {
    const metrics = new Metrics();
    const log = logCapture();
    const observer = { metrics, log: pino({ level: 'info' }, log) };
    const counts = async (): Promise<Record<string, number>> => {
      const values = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'pushgate_peer_links_total')?.values ?? [];
      return Object.fromEntries(values.map((v) => [String(v.labels['result']), v.value]));
    };
    // A node not listening yet: each push dials and fails; one warning says so.
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    client = new PeerClient(SECRET, 3000, null, observer);
    for (let i = 0; i < 2; i++) expect(await client.push(url, note(1))).toBe('absent');
    // It starts: the next push opens the link, and the log says it is back.
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    clients.add(held(1, []));
    await start(clients, { n: 0 }, port);
    expect(await client.push(url, note(1))).toBe('delivered');
    expect(await client.push(url, { ...note(1), seq: 2, version: 'v1b' })).toBe('delivered');
    // A wrong secret: refused at every dial, one warning for that client's link.
    const wrong = new PeerClient('wrong-secret-0000000', 3000, null, observer);
    for (let i = 0; i < 3; i++) expect(await wrong.push(url, note(1))).toBe('absent');
    wrong.close();
    expect(await counts()).toEqual({ unreachable: 2, open: 1, refused: 3 });
    expect(log.lines.map((l) => [l['msg'], l['result'], l['reason']])).toEqual([
      ['peer link not open: pushes for its clients are stored', 'unreachable', 'ECONNREFUSED'],
      ['peer link open again', undefined, undefined],
      ['peer link not open: pushes for its clients are stored', 'refused', 'status 401'],
    ]);
    expect(JSON.stringify(log.lines)).not.toContain('wrong-secret');
  });

  it('answers a malformed notification as absent, and ends a link that sends garbage, a frame too large or one it must not', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const delivered: string[] = [];
    clients.add(held(1, delivered));
    const { port } = await start(clients);
    const ok = await rawLink(port);
    const bad = [
      { ...note(1), uaid: 'not-a-uaid' },
      { ...note(1), ttl: -1 },
      { ...note(1), urgency: 'now' },
      { ...note(1), headers: { a: 1 } },
      // A body that is not base64url: the client's frame writes data unescaped (messages.ts NotificationFrame).
      { ...note(1), data: 'x","messageType":"broadcast' },
    ];
    bad.forEach((n, id) => ok.socket.write(encodeFrame({ t: 'push', id, n: n as unknown as Notification })));
    ok.socket.write(encodeFrame({ t: 'notify', id: 9, uaid: '../../etc' }));
    await expect.poll(() => ok.answers.length).toBe(6);
    expect(ok.answers).toEqual([...bad.map((_, id) => ({ t: 'answer', id, v: 'absent' })), { t: 'answer', id: 9, v: false }]);
    expect(delivered).toEqual([]);
    // Still serving: a good push on the same link is delivered.
    ok.socket.write(encodeFrame({ t: 'push', id: 10, n: note(1) }));
    await expect.poll(() => ok.answers.at(-1)).toEqual({ t: 'answer', id: 10, v: 'delivered' });

    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(LINK_MAX_FRAME + 1, 0);
    for (const attack of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), huge, encodeFrame({ t: 'answer', id: 1, v: true })]) {
      const link = await rawLink(port);
      link.socket.write(attack);
      await link.closed;
    }
    // A socket that never upgrades gets nothing from the link either.
    const plain = connect(port, '127.0.0.1');
    sockets.push(plain);
    plain.write(encodeFrame({ t: 'push', id: 1, n: note(1) }));
    const reply = await new Promise<string>((resolve) => plain.once('data', (d: Buffer) => resolve(d.toString())));
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(delivered).toEqual(['v1']);
  });

  it('stops reading a link with LINK_MAX_INFLIGHT pushes unanswered, and reads on as they are answered', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const saves: DirectSave[] = [];
    clients.add(held(1, [], { saves }));
    const { port } = await start(clients);
    const link = await rawLink(port);
    const total = LINK_MAX_INFLIGHT + 2000;
    const frames = Array.from({ length: total }, (_, id) => encodeFrame({ t: 'push', id, n: { ...note(1), seq: id, version: `v${id}` } }));
    for (const f of frames) link.socket.write(f);
    // Every offer waits for its client's ack (the saves kept here): the holder takes LINK_MAX_INFLIGHT, plus at most
    // the rest of the chunk that reached the limit (Node reads a socket 64 KiB at a time), and then reads no more.
    await expect.poll(() => saves.length).toBeGreaterThanOrEqual(LINK_MAX_INFLIGHT);
    const taken = saves.length;
    expect(taken).toBeLessThanOrEqual(LINK_MAX_INFLIGHT + Math.ceil(65536 / Math.min(...frames.map((f) => f.length))));
    // The client acks until half the limit is left unanswered: those answers go out, and reading resumes.
    const half = taken - LINK_MAX_INFLIGHT / 2;
    for (const s of saves.slice(0, half)) void s.release();
    await expect.poll(() => saves.length).toBeGreaterThan(taken);
    for (let k = half; k < total; k++) {
      await expect.poll(() => saves.length > k).toBe(true);
      void saves[k]!.release();
    }
    await expect.poll(() => link.answers.length).toBe(total);
    expect(new Set(link.answers.map((a) => (a as { v: unknown }).v))).toEqual(new Set(['delivered']));
  });

  it('answers a push written before the link died as absent, and one the node never answers as unanswered', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const saves: DirectSave[] = [];
    clients.add(held(1, [], { saves }));
    const links: Socket[] = [];
    const { url } = await start(clients);
    server!.server.on('upgrade', (_req, s: Socket) => links.push(s));
    client = new PeerClient(SECRET, 1500, null);
    // The link is up (a notify answered) before the pushes, so each is written at once, whatever the machine's load.
    expect(await client.notify(url, uaid(1))).toBe(true);
    // Saves kept and never released: the holder never answers.
    expect(await client.push(url, note(1))).toBe('unanswered');
    const lost = client.push(url, { ...note(1), seq: 2, version: 'v2' });
    await expect.poll(() => saves.length).toBe(2);
    links[0]!.destroy();
    expect(await lost).toBe('absent');
  });

  it('a node shutting down answers the pushes in flight before its link ends, and opens no new one', async () => {
    const clients = new ClientRegistry();
    clients.store = store = await openStore('sqlite::memory:');
    const saves: DirectSave[] = [];
    clients.add(held(1, [], { saves }));
    const { url, port } = await start(clients);
    client = new PeerClient(SECRET, 3000, null);
    const inFlight = client.push(url, note(1));
    await expect.poll(() => saves.length).toBe(1);
    const closing = server!.close();
    // Once its shutdown has begun (the hooks run a moment after close() is called), no link is opened.
    await expect
      .poll(() =>
        rawLink(port).then(
          () => 'opened',
          () => 'refused',
        ),
      )
      .toBe('refused');
    void saves[0]!.release();
    expect(await inFlight).toBe('delivered');
    await closing;
    server = null;
  });
});
