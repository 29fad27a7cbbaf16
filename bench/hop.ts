/**
 * The hop alone, old against new, in one run (`npx tsc -p tsconfig.bench.json && node .bench-build/bench/hop.js
 * [pushes] [modes]`, modes comma-separated, all by default): a node:cluster primary and two workers; worker 2 offers
 * pushes (a 1 kB body's Notification, 64 in flight) to worker 1, which answers each `delivered` without a client
 * behind it. Between workers: `ipc`, the way before issue 13's mesh, worker → primary → worker and back over
 * node:cluster IPC (JSON), the primary looking the holder up; `mesh`, the workers' own unix-socket frames
 * (src/cluster/mesh.ts), the primary idle. Between fleet nodes, over loopback TCP: `http`, the hop before the peer
 * link, one `PUT /push/{uaid}` per push on kept-alive HTTP/1.1 (node:http's Agent, a socket per push in flight, so
 * no batching) to a fastify route that checks the notification; `link`, the peer link (src/webpush/endpoint/
 * peer-client.ts to src/webpush/connection/peer-server.ts, through offerToClient to a client that acks at once).
 * Each process reports its CPU; the figure is the three processes' CPU per push, which on a shared machine is
 * steadier than a rate. Modes alternate, twice each, so a change in the machine's load shows as a spread.
 */
import { randomBytes } from 'node:crypto';
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import Fastify from 'fastify';
import { pino } from 'pino';
import type { PeerFrame } from '../src/cluster/frames.js';
import { WORKER_SECRET_BYTES } from '../src/cluster/ipc.js';
import { Mesh } from '../src/cluster/mesh.js';
import { Metrics } from '../src/ops/metrics.js';
import type { Notification, Store } from '../src/store/index.js';
import { ClientRegistry } from '../src/webpush/connection/clients.js';
import { createPeerServer } from '../src/webpush/connection/peer-server.js';
import { PeerClient } from '../src/webpush/endpoint/peer-client.js';
import { isNotification } from '../src/webpush/protocol/peer-link.js';
import { encodePayload } from '../src/webpush/protocol/payload.js';

const MODES = ['ipc', 'mesh', 'http', 'link'] as const;
type Mode = (typeof MODES)[number];
const WINDOW = 64;

const note = (i: number): Notification => ({
  uaid: 'a'.repeat(32),
  channelID: '5f6a6b0c-0000-4000-8000-000000000001',
  seq: i,
  version: 'gAAAAAB'.padEnd(180, 'x'),
  ttl: 60,
  expiry: Date.now() + 60_000,
  topic: null,
  urgency: 'normal',
  data: encodePayload(Buffer.alloc(1024, 0x41)),
  headers: { encoding: 'aes128gcm' },
  timestamp: Date.now(),
});

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

async function primary(pushes: number, modes: readonly Mode[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-hop-'));
  const secret = randomBytes(WORKER_SECRET_BYTES).toString('hex');
  const results: { mode: Mode; round: number; usPerPush: number; primaryUsPerPush: number; pushesPerS: number }[] = [];
  for (let round = 1; round <= 2; round++) {
    for (const mode of modes) {
      const workers = [1, 2].map((i) => cluster.fork({ HOP_INDEX: String(i), HOP_MODE: mode, HOP_DIR: dir, HOP_PUSHES: String(pushes), HOP_SECRET: secret }));
      const [w1, w2] = workers as [Worker, Worker];
      const done = new Map<number, { cpu: number; ms: number }>();
      const p0 = cpuUs();
      await new Promise<void>((resolve) => {
        let ready = 0;
        for (const [i, w] of workers.entries()) {
          let port = 0;
          w.on('message', (m: { ready?: true; port?: number; done?: { cpu: number; ms: number }; t?: string; id?: number; n?: unknown; v?: unknown }) => {
            if (m.ready) {
              // Worker 1 listens for the fleet modes: worker 2 is told where.
              if (m.port) port = m.port;
              if (++ready === 2) w2.send({ go: true, port });
              return;
            }
            if (m.done) {
              done.set(i + 1, m.done);
              if (done.size === 1 && i === 1) w1.send({ report: true });
              if (done.size === 2) resolve();
              return;
            }
            // The relay of the old way: a push from worker 2 goes to worker 1, the answer back.
            if (m.t === 'push') w1.send(m);
            else if (m.t === 'answer') w2.send(m);
          });
        }
      });
      const primaryUs = cpuUs() - p0;
      const sender = done.get(2)!;
      const total = done.get(1)!.cpu + sender.cpu + primaryUs;
      results.push({
        mode,
        round,
        usPerPush: Math.round((total / pushes) * 10) / 10,
        primaryUsPerPush: Math.round((primaryUs / pushes) * 10) / 10,
        pushesPerS: Math.round(pushes / (sender.ms / 1000)),
      });
      for (const w of workers) w.kill();
      await Promise.all(workers.map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r)))));
    }
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ pushes, window: WINDOW, results }, null, 1));
}

async function worker(): Promise<void> {
  const index = Number(process.env['HOP_INDEX']);
  const mode = process.env['HOP_MODE'] as Mode;
  const pushes = Number(process.env['HOP_PUSHES']);
  const send = (m: unknown) => process.send!(m);
  let onAnswer: (id: number) => void = () => {};
  let mesh: Mesh | null = null;
  if (mode === 'mesh') {
    let up: () => void;
    const linked = new Promise<void>((r) => (up = r));
    mesh = new Mesh(
      process.env['HOP_DIR']!,
      index,
      2,
      {
        frame: (from, f: PeerFrame) => {
          if (f.t === 'push') mesh!.send(from, { t: 'answer', id: f.id, v: 'delivered' });
          else if (f.t === 'answer') onAnswer(f.id);
        },
        up: () => up(),
        down: () => {},
        silent: () => {},
      },
      Buffer.from(process.env['HOP_SECRET']!, 'hex'),
    );
    mesh.start();
    await linked;
  }
  let port = 0;
  if (index === 1 && (mode === 'http' || mode === 'link')) port = await listen(mode);
  let peers: PeerClient | null = null;
  let agent: http.Agent | null = null;
  process.on('message', (m: { go?: true; port?: number; report?: true; t?: string; id?: number; n?: Notification }) => {
    if (m.t === 'push') send({ t: 'answer', id: m.id, v: 'delivered' });
    else if (m.t === 'answer') onAnswer(m.id!);
    else if (m.report) send({ done: { cpu: cpuUs() - c0, ms: 0 } });
    else if (m.go) {
      port = m.port ?? 0;
      if (mode === 'link') peers = new PeerClient(SECRET);
      if (mode === 'http') agent = new http.Agent({ keepAlive: true, maxSockets: WINDOW });
      void run();
    }
  });
  const c0 = cpuUs();
  const run = async () => {
    const t0 = Date.now();
    let next = 0;
    let answered = 0;
    await new Promise<void>((resolve) => {
      const offer = () => {
        const id = next++;
        if (mode === 'mesh') mesh!.send(1, { t: 'push', id, n: note(id) });
        else if (mode === 'link') void peers!.push(`http://127.0.0.1:${port}`, note(id)).then(() => onAnswer(id));
        else if (mode === 'http') putPush(agent!, port, note(id), () => onAnswer(id));
        else send({ pg: 1, t: 'push', id, n: note(id) });
      };
      onAnswer = () => {
        if (++answered === pushes) resolve();
        else if (next < pushes) offer();
      };
      for (let i = 0; i < WINDOW; i++) offer();
    });
    send({ done: { cpu: cpuUs() - c0, ms: Date.now() - t0 } });
  };
  send({ ready: true, port });
}

const SECRET = 'hop-bench-secret-0123456789';

/** Worker 1 of a fleet mode: the connection node's side on a free loopback port; resolves with the port. */
async function listen(mode: 'http' | 'link'): Promise<number> {
  if (mode === 'link') {
    const clients = new ClientRegistry();
    // A client that acks every message at once: its save is released before it begins, so nothing is written.
    clients.store = {} as Store;
    clients.add({
      uaid: 'a'.repeat(32),
      connectedAt: 1,
      channels: new Map([[note(0).channelID, null]]),
      deliverDirect: (_n, { save } = {}) => (void save?.release(), true),
      storageChanged: () => {},
      close: () => {},
    });
    const app = createPeerServer({ clients, secret: SECRET, log: pino({ level: 'silent' }), metrics: new Metrics(), tls: null });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as { port: number }).port;
  }
  const app = Fastify();
  app.put<{ Params: { uaid: string }; Body: unknown }>('/push/:uaid', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${SECRET}` || !isNotification(request.body)) return reply.code(400).send({});
    return reply.code(200).send({ delivered: true });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}

/** The old hop's request: one kept-alive HTTP/1.1 PUT per push, its JSON answer read. */
function putPush(agent: http.Agent, port: number, n: Notification, done: () => void): void {
  const body = JSON.stringify(n);
  const req = http.request(
    {
      host: '127.0.0.1',
      port,
      path: `/push/${n.uaid}`,
      method: 'PUT',
      agent,
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    },
    (res) => {
      res.on('data', () => {});
      res.on('end', done);
    },
  );
  req.end(body);
}

if (cluster.isPrimary) {
  const modes = (process.argv[3]?.split(',') ?? MODES) as Mode[];
  if (!modes.every((m) => MODES.includes(m))) throw new Error(`modes: ${MODES.join(', ')}`);
  await primary(Number(process.argv[2] ?? 100_000), modes);
} else await worker();
