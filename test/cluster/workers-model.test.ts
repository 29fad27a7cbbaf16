/**
 * The workers' delivery against a model (fast-check): three workers of one machine, each with its real router,
 * WorkerLink (directory, takeovers, notifies, rechecks) and sessions, on one SQLite store, with the mesh played in
 * process. Frames on each link arrive in order, as on a unix socket, but the links interleave as the run says: a
 * frame may wait while pushes, connects, acks and other links' frames go ahead. Generated runs of pushes landing on
 * any worker, a client moving between workers (its older connection left open until the takeover reaches it, or
 * dropped by the client), acks and ack waits running out. Both layouts of the directory. What README "Scale-out"
 * and "Durability" promise:
 * - every push is answered once its frames have arrived and its message was acked or saved (none waits for a
 *   request's timeout);
 * - the newest connection of the uaid is the only one left open, and every worker's directory names it;
 * - every accepted TTL > 0 message reaches the client's current connection without it reconnecting: a message
 *   stored anywhere on the machine while that connection was open is announced to it;
 * - a session never sends a message twice, and an acked message never comes back.
 */
import fc from 'fast-check';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { PeerFrame } from '../../src/cluster/frames.js';
import { type MeshPort, WorkerLink } from '../../src/cluster/worker.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { Session } from '../../src/webpush/connection/session.js';
import { WebPushRouter } from '../../src/webpush/endpoint/router.js';
import { FernetKey, MultiFernet } from '../../src/webpush/protocol/fernet.js';
import { channelId, payload } from '../helpers/push.js';
import { ModelClient, RecordingPort, helloOn, modelContext, settle } from '../helpers/session.js';

/** One for every run: each Metrics starts prom-client's default collectors (a GC observer among them), which add up. */
const metrics = new Metrics();
const WORKERS = [1, 2, 3] as const;
/** Below the mesh's request timeout (3 s) over a whole run: no request may end by timing out. */
const ACK_WAIT_MS = 30;

/** The run's store, closed when the run ends however it ends. */
const stores: SqliteStore[] = [];

/** The mesh in one process: a queue of frames per direct link, delivered when the run says. */
class Mesh {
  readonly links = new Map<number, WorkerLink>();
  private readonly queues = new Map<string, { from: number; to: number; f: PeerFrame }[]>();

  port(self: number): MeshPort {
    return {
      send: (to, f) => {
        const key = `${self}>${to}`;
        const q = this.queues.get(key) ?? [];
        q.push({ from: self, to, f });
        this.queues.set(key, q);
        return true;
      },
      siblings: () => WORKERS.filter((w) => w !== self),
    };
  }

  get inFlight(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Delivers the next frame of one link with frames waiting (`pick` chooses which); false when none waits. */
  deliverOne(pick: number): boolean {
    const waiting = [...this.queues.values()].filter((q) => q.length > 0);
    if (waiting.length === 0) return false;
    const { from, to, f } = waiting[pick % waiting.length]!.shift()!;
    this.links.get(to)!.receive(from, f);
    return true;
  }
}

const op = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('push' as const), worker: fc.constantFrom(...WORKERS), ttl0: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('frame' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('frames' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ackAll' as const) }) },
  // The client drops its connection, or opens a new one on a worker while the old one may stay open until the
  // takeover reaches it (a client whose network changed), or drops that old one itself.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('disconnect' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('connect' as const), worker: fc.constantFrom(...WORKERS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropOld' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('later' as const) }) },
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

describe('delivery across workers, for generated runs of pushes, moves between workers and frames in any order', () => {
  it('answers every push, leaves only the newest connection, and loses no accepted message', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40, size: 'max' }), fc.constantFrom('replicated' as const, ...WORKERS), async (ops, layout) => {
        try {
          await run(ops, layout);
        } finally {
          // What a run leaves behind (its sessions' hello timers) would slow every later run's fake clock.
          vi.clearAllTimers();
          await Promise.all(stores.splice(0).map((s) => s.close()));
        }
      }),
      { numRuns: 200 },
    );
  });
});

/** One generated run; `layout` is replicated, or partitioned with the uaid's entry on that worker. */
async function run(ops: Op[], layout: 'replicated' | (typeof WORKERS)[number]): Promise<void> {
  const store = new SqliteStore(':memory:');
  stores.push(store);
  let clock = Date.now();
  const fernet = new MultiFernet([FernetKey.generate()]);
  const mesh = new Mesh();
  // Partitioned, the run names the uaid's owner (partitionOwner would take it from the random uaid's hash).
  const ownerOf = layout === 'replicated' ? null : () => layout;
  const workers = WORKERS.map((index) => {
    const link = new WorkerLink(index, mesh.port(index), () => {}, { ownerOf, workers: WORKERS.length, now: () => clock });
    link.clients.store = store;
    mesh.links.set(index, link);
    const router = new WebPushRouter(store, link.clients, fernet, metrics, 1000, null, null, null, link, {
      userMaxIdleMs: 60 * 86_400_000,
      storageBatch: 2,
      now: () => clock,
    });
    router.useSeqLane(index - 1, WORKERS.length);
    const ctx = modelContext({
      store,
      clients: link.clients,
      fernet,
      metrics,
      peerId: null,
      peers: null,
      ackWaitMs: ACK_WAIT_MS,
      nextSeq: () => router.nextSeq(),
      now: () => clock,
    });
    return { index, link, router, ctx };
  });

  type Connection = { worker: number; port: RecordingPort; session: Session; droppedByClient: boolean };
  const connections: Connection[] = [];
  let current = null as Connection | null;
  let uaid: string | undefined;
  const chid = channelId();
  const accepted = new Set<string>();
  const client = new ModelClient();
  const pushes: { answered: boolean; done: Promise<unknown> }[] = [];
  let text = 0;

  const collect = () => {
    if (current) client.take(current.port.take());
  };
  const connect = async (worker: number) => {
    collect();
    clock += 1;
    const port = new RecordingPort();
    const c: Connection = { worker, port, session: new Session(port, workers[worker - 1]!.ctx), droppedByClient: false };
    connections.push(c);
    current = c;
    client.connected();
    uaid = await helloOn(c.session, port, uaid, chid);
  };
  /** Every frame in flight has arrived, and what they started (store writes, further frames) has run. */
  const quiesce = async () => {
    for (let quiet = 0, rounds = 0; quiet < 3; rounds++) {
      if (rounds > 1000) throw new Error('the workers never stop sending frames');
      await settle();
      if (mesh.inFlight === 0) quiet++;
      else {
        quiet = 0;
        for (let n = 0; mesh.deliverOne(0); n++) if (n > 10_000) throw new Error('the workers never stop sending frames');
      }
    }
    collect();
  };

  await connect(1);
  for (const o of ops) {
    if (o.kind === 'push') {
      const body = payload(`m${++text}`);
      const entry = { answered: false, done: Promise.resolve() as Promise<unknown> };
      entry.done = workers[o.worker - 1]!.router.route({
        uaid: uaid!,
        channelID: chid,
        ttl: o.ttl0 ? 0 : 600,
        topic: null,
        urgency: 'normal',
        data: body,
        headers: null,
      }).then((r) => {
        entry.answered = true;
        if (!o.ttl0) accepted.add(r.messageId);
      });
      pushes.push(entry);
    } else if (o.kind === 'frame') {
      mesh.deliverOne(o.pick);
    } else if (o.kind === 'frames') {
      while (mesh.deliverOne(0));
    } else if (o.kind === 'disconnect') {
      collect();
      if (current) {
        current.droppedByClient = true;
        await current.session.onClosed();
      }
      current = null;
    } else if (o.kind === 'connect') {
      await connect(o.worker);
    } else if (o.kind === 'dropOld') {
      const old = connections.find((c) => c !== current && !c.droppedByClient && c.port.closedWith === null);
      if (old) {
        old.droppedByClient = true;
        await old.session.onClosed();
      }
    } else if (o.kind === 'later') {
      clock += ACK_WAIT_MS + 1;
      vi.advanceTimersByTime(ACK_WAIT_MS + 1);
    } else if (current) {
      if (o.kind === 'ackAll') await client.ackAll(current.session);
      else await client.ackOne(current.session, o.pick);
    }
    await settle();
    collect();
  }

  await quiesce();
  if (current === null) await connect(1);
  const holder = current!;
  await quiesce();
  // The takeovers reached every older connection the client left open; the newest one stays.
  for (const c of connections) {
    if (c === holder) expect(c.port.closedWith, 'the newest connection was closed').toBeNull();
    else if (!c.droppedByClient) expect(c.port.closedWith, `connection on worker ${c.worker} left open`).not.toBeNull();
  }
  // Every worker that keeps the uaid's entry names the holder; the rest keep none.
  for (const w of workers) {
    if (w.index === holder.worker) continue;
    const keeps = ownerOf === null || ownerOf() === w.index;
    expect(w.link.siblingClients, `worker ${w.index}'s directory`).toBe(keeps ? 1 : 0);
  }
  // The current connection, acking all it gets, receives every accepted message not acked before.
  for (;;) {
    vi.advanceTimersByTime(ACK_WAIT_MS + 1);
    await quiesce();
    if ((await client.ackAll(holder.session)) === 0) break;
  }
  // Less fake time has passed than the mesh's request timeout: each push was answered by its frames.
  for (const [i, p] of pushes.entries()) expect(p.answered, `push ${i} unanswered`).toBe(true);
  await Promise.all(pushes.map((p) => p.done));
  client.expectNoneLost(accepted);
  await holder.session.onClosed();
  await quiesce();
  for (const w of workers) expect(w.link.siblingClients, `worker ${w.index}'s directory after the last close`).toBe(0);
}
