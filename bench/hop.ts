/**
 * The cross-worker hop alone, old against new, in one run (`npx tsc -p tsconfig.bench.json && node
 * .bench-build/bench/hop.js [pushes]`): a node:cluster primary and two workers; worker 2 offers pushes (a 1 kB
 * body's Notification, 64 in flight) to worker 1, which answers each `delivered` without a client behind it.
 * `ipc`: the way before issue 13's mesh, worker → primary → worker and back over node:cluster IPC (JSON), the
 * primary looking the holder up. `mesh`: the workers' own unix-socket frames (src/cluster/mesh.ts), the primary idle.
 * Each process reports its CPU; the figure is the three processes' CPU per push, which on a shared machine is
 * steadier than a rate. Modes alternate, twice each, so a change in the machine's load shows as a spread.
 */
import { randomBytes } from 'node:crypto';
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerFrame } from '../src/cluster/frames.js';
import { WORKER_SECRET_BYTES } from '../src/cluster/ipc.js';
import { Mesh } from '../src/cluster/mesh.js';
import type { Notification } from '../src/store/index.js';

type Mode = 'ipc' | 'mesh';
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
  data: 'Q'.repeat(1366),
  headers: { encoding: 'aes128gcm' },
  timestamp: Date.now(),
});

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

async function primary(pushes: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-hop-'));
  const secret = randomBytes(WORKER_SECRET_BYTES).toString('hex');
  const results: { mode: Mode; round: number; usPerPush: number; primaryUsPerPush: number; pushesPerS: number }[] = [];
  for (let round = 1; round <= 2; round++) {
    for (const mode of ['ipc', 'mesh'] as const) {
      const workers = [1, 2].map((i) => cluster.fork({ HOP_INDEX: String(i), HOP_MODE: mode, HOP_DIR: dir, HOP_PUSHES: String(pushes), HOP_SECRET: secret }));
      const [w1, w2] = workers as [Worker, Worker];
      const done = new Map<number, { cpu: number; ms: number }>();
      const p0 = cpuUs();
      await new Promise<void>((resolve) => {
        let ready = 0;
        for (const [i, w] of workers.entries()) {
          w.on('message', (m: { ready?: true; done?: { cpu: number; ms: number }; t?: string; id?: number; n?: unknown; v?: unknown }) => {
            if (m.ready && ++ready === 2) {
              w2.send({ go: true });
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
  process.on('message', (m: { go?: true; report?: true; t?: string; id?: number; n?: Notification }) => {
    if (m.t === 'push') send({ t: 'answer', id: m.id, v: 'delivered' });
    else if (m.t === 'answer') onAnswer(m.id!);
    else if (m.report) send({ done: { cpu: cpuUs() - c0, ms: 0 } });
    else if (m.go) void run();
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
  send({ ready: true });
}

if (cluster.isPrimary) await primary(Number(process.argv[2] ?? 100_000));
else await worker();
