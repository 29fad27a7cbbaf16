// The cluster primary (src/cluster/primary.ts) run in the test process against scripted workers
// (fixtures/scripted-worker.mjs): real node:cluster forks and real IPC, but each worker does what the test says,
// so the primary's directory, relaying, restart and shutdown rules are checked message by message.
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPrimary } from '../../src/cluster/primary.js';
import type { PrimaryToWorker, WorkerToPrimary } from '../../src/cluster/ipc.js';
import type { Notification } from '../../src/store/index.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/scripted-worker.mjs', import.meta.url));

interface Seen {
  worker: string;
  m: Record<string, unknown>;
}

/** Every message any scripted worker sent, in order, and a bounded wait for the next one matching a predicate. */
class Inbox {
  readonly seen: Seen[] = [];
  private waiters: { pred: (s: Seen) => boolean; resolve: (s: Seen) => void }[] = [];
  readonly workers = new Map<string, Worker>();

  constructor() {
    cluster.on('message', (worker: Worker, m: Record<string, unknown>) => {
      const s = { worker: String(m.worker), m };
      if (m.ready) this.workers.set(s.worker, worker);
      this.seen.push(s);
      this.waiters = this.waiters.filter((w) => (w.pred(s) ? (w.resolve(s), false) : true));
    });
  }

  /** Resolves with the first message (already seen from `from` on, or yet to come) that matches. */
  wait(pred: (s: Seen) => boolean, from = 0, ms = 10_000): Promise<Seen> {
    const had = this.seen.slice(from).find(pred);
    if (had) return Promise.resolve(had);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching worker message in time')), ms);
      this.waiters.push({ pred, resolve: (s) => (clearTimeout(timer), resolve(s)) });
    });
  }

  /** The next primary → worker message echoed by worker `w`. */
  echoed(w: string, t: PrimaryToWorker['t'], from: number): Promise<PrimaryToWorker> {
    return this.wait((s) => s.worker === w && (s.m.echo as PrimaryToWorker | undefined)?.t === t, from).then((s) => s.m.echo as PrimaryToWorker);
  }

  /** The primary's reply to request `id` of worker `w`. */
  reply(w: string, id: number, from: number): Promise<PrimaryToWorker> {
    const echo = (s: Seen) => s.m.echo as { t?: string; id?: number } | undefined;
    return this.wait((s) => s.worker === w && echo(s)?.t === 'reply' && echo(s)?.id === id, from).then((s) => s.m.echo as PrimaryToWorker);
  }

  say(w: string, m: WorkerToPrimary): void {
    this.workers.get(w)!.send({ say: m });
  }

  private syncId = 1_000_000;
  /**
   * Resolves once the primary has handled everything worker `w` sent so far: the primary reads each worker's
   * channel in order, so the answer to a push for an unknown uaid comes after them. Messages of two workers have no
   * order between them, so a test that needs one worker's attach seen before another worker's push waits for this.
   */
  async settled(w: string): Promise<void> {
    const id = this.syncId++;
    const from = this.seen.length;
    this.say(w, { pg: 1, t: 'push', id, n: note('0'.repeat(32)) });
    await this.wait((s) => s.worker === w && (s.m.echo as { id?: number } | undefined)?.id === id, from);
  }
}

function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as FastifyBaseLogger;
  return { log, lines };
}

/** Runs runPrimary, returning the SIGTERM/SIGINT handlers it installed (called directly: no real signal reaches vitest). */
function start(workers: number, log: FastifyBaseLogger) {
  const before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
  const done = runPrimary({ workers, log, env: { SCRIPTED_EXTRA: 'extra' } });
  const added = (sig: 'SIGTERM' | 'SIGINT') => process.listeners(sig).filter((l) => !before[sig].includes(l));
  const handlers = { SIGTERM: added('SIGTERM'), SIGINT: added('SIGINT') };
  const cleanup = () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) for (const l of handlers[sig]) process.removeListener(sig, l);
  };
  return { done, handlers, cleanup };
}

const UA = (c: string) => c.repeat(32);
const note = (uaid: string): Notification => ({
  uaid,
  channelID: 'ch',
  seq: 1,
  version: 'v1',
  ttl: 60,
  expiry: Date.now() + 60_000,
  topic: null,
  urgency: 'normal',
  data: null,
  headers: null,
  timestamp: Date.now(),
});

describe('cluster primary with scripted workers', () => {
  const inbox = new Inbox();
  const { log, lines } = recordingLog();
  let run: ReturnType<typeof start>;

  beforeAll(async () => {
    cluster.setupPrimary({ exec: SCRIPT, execArgv: [], args: [] });
    run = start(2, log);
    await inbox.wait((s) => s.worker === '1' && s.m.ready === true);
    await inbox.wait((s) => s.worker === '2' && s.m.ready === true);
  });
  afterAll(() => run.cleanup());

  it('forks each worker with its index, the worker count and the extra environment', () => {
    const ready = inbox.seen.filter((s) => s.m.ready).map((s) => s.m);
    expect(ready).toEqual(
      expect.arrayContaining([
        { ready: true, worker: '1', count: '2', extra: 'extra' },
        { ready: true, worker: '2', count: '2', extra: 'extra' },
      ]),
    );
  });

  it('logs "cluster listening" once every worker listens', async () => {
    inbox.workers.get('1')!.send({ listen: true });
    await new Promise<void>((resolve) => cluster.once('listening', () => resolve()));
    expect(lines.some((l) => l.msg === 'pushgate cluster listening')).toBe(false);
    inbox.workers.get('2')!.send({ listen: true });
    await new Promise<void>((resolve) => cluster.once('listening', () => resolve()));
    expect(lines.filter((l) => l.msg === 'pushgate cluster listening')).toEqual([{ level: 'info', obj: { workers: 2 }, msg: 'pushgate cluster listening' }]);
  });

  it('relays a push to the worker holding the uaid and its answer back to the asker', async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'attach', uaid: UA('a'), connectedAt: 10 });
    await inbox.settled('1');
    const n = note(UA('a'));
    inbox.say('2', { pg: 1, t: 'push', id: 7, n });
    const forwarded = await inbox.echoed('1', 'push', from);
    expect(forwarded).toMatchObject({ pg: 1, t: 'push', n: { uaid: UA('a'), version: 'v1' } });
    const fid = (forwarded as { id: number }).id;
    inbox.say('1', { pg: 1, t: 'answer', id: fid, v: 'delivered' });
    expect(await inbox.reply('2', 7, from)).toEqual({ pg: 1, t: 'reply', id: 7, v: 'delivered' });
    // A second answer for the same forwarded id is stale: nothing more reaches the asker.
    inbox.say('1', { pg: 1, t: 'answer', id: fid, v: 'busy' });
    inbox.say('2', { pg: 1, t: 'notify', id: 8, uaid: UA('a') });
    const notify = await inbox.echoed('1', 'notify', from);
    inbox.say('1', { pg: 1, t: 'answer', id: (notify as { id: number }).id, v: true });
    expect(await inbox.wait((s) => s.worker === '2' && (s.m.echo as { id?: number } | undefined)?.id === 8, from)).toMatchObject({
      m: { echo: { t: 'reply', id: 8, v: true } },
    });
    const replies = inbox.seen.slice(from).filter((s) => s.worker === '2' && (s.m.echo as { t?: string } | undefined)?.t === 'reply');
    expect(replies.map((s) => (s.m.echo as { id: number }).id)).toEqual([7, 8]);
  });

  it('answers at once when no other worker holds the uaid: absent for a push, false for a notify', async () => {
    const from = inbox.seen.length;
    inbox.say('2', { pg: 1, t: 'push', id: 20, n: note(UA('b')) });
    expect(await inbox.reply('2', 20, from)).toEqual({ pg: 1, t: 'reply', id: 20, v: 'absent' });
    // The holder asking about its own client: nobody else to ask.
    inbox.say('1', { pg: 1, t: 'push', id: 21, n: note(UA('a')) });
    expect(await inbox.reply('1', 21, from)).toEqual({ pg: 1, t: 'reply', id: 21, v: 'absent' });
    inbox.say('2', { pg: 1, t: 'notify', id: 22, uaid: UA('b') });
    expect(await inbox.wait((s) => s.worker === '2' && (s.m.echo as { id?: number } | undefined)?.id === 22, from)).toMatchObject({
      m: { echo: { t: 'reply', id: 22, v: false } },
    });
  });

  it('tells a client that attaches just after a notify missed it to look at storage again, once', async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'notify', id: 30, uaid: UA('c') });
    await inbox.wait((s) => s.worker === '1' && (s.m.echo as { id?: number } | undefined)?.id === 30, from);
    inbox.say('2', { pg: 1, t: 'attach', uaid: UA('c'), connectedAt: 50 });
    expect(await inbox.echoed('2', 'attached', from)).toEqual({ pg: 1, t: 'attached', uaid: UA('c'), connectedAt: 50 });
    // The miss is used up: a second attach (a reconnect) hears nothing; a push then shows the directory saw it.
    inbox.say('2', { pg: 1, t: 'detach', uaid: UA('c'), connectedAt: 50 });
    inbox.say('2', { pg: 1, t: 'attach', uaid: UA('c'), connectedAt: 60 });
    await inbox.settled('2');
    inbox.say('1', { pg: 1, t: 'push', id: 31, n: note(UA('c')) });
    await inbox.echoed('2', 'push', from);
    expect(inbox.seen.slice(from).filter((s) => (s.m.echo as { t?: string } | undefined)?.t === 'attached')).toHaveLength(1);
  });

  it('has the older holder drop its connection when the uaid attaches newer on another worker', async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'attach', uaid: UA('d'), connectedAt: 100 });
    await inbox.settled('1');
    inbox.say('2', { pg: 1, t: 'attach', uaid: UA('d'), connectedAt: 200 });
    expect(await inbox.echoed('1', 'drop', from)).toEqual({ pg: 1, t: 'drop', uaid: UA('d'), connectedAt: 200 });
    // A drop asked for by a worker (a takeover from another machine) goes to the current holder.
    inbox.say('1', { pg: 1, t: 'drop', uaid: UA('d'), connectedAt: 300 });
    expect(await inbox.echoed('2', 'drop', from)).toEqual({ pg: 1, t: 'drop', uaid: UA('d'), connectedAt: 300 });
  });

  it('forgets a detached client: pushes for it are answered absent', async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'attach', uaid: UA('e'), connectedAt: 5 });
    inbox.say('1', { pg: 1, t: 'detach', uaid: UA('e'), connectedAt: 5 });
    await inbox.settled('1');
    inbox.say('2', { pg: 1, t: 'push', id: 40, n: note(UA('e')) });
    expect(await inbox.reply('2', 40, from)).toEqual({ pg: 1, t: 'reply', id: 40, v: 'absent' });
  });

  it("answers a worker's metrics request with every worker's metrics aggregated", async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'metrics', id: 50 });
    const reply = (await inbox.reply('1', 50, from)) as { id: number; v: string };
    expect(reply.id).toBe(50);
    expect(reply.v).toMatch(/^scripted_worker_total 2$/m);
  });

  it('answers requests forwarded to a worker that dies, forgets its clients and restarts it', async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'attach', uaid: UA('f'), connectedAt: 1 });
    await inbox.settled('1');
    inbox.say('2', { pg: 1, t: 'push', id: 60, n: note(UA('f')) });
    await inbox.echoed('1', 'push', from);
    const dead = inbox.workers.get('1')!;
    dead.send({ exit: 1 });
    expect(await inbox.reply('2', 60, from)).toEqual({ pg: 1, t: 'reply', id: 60, v: 'absent' });
    const restarted = await inbox.wait((s) => s.worker === '1' && s.m.ready === true, from);
    expect(inbox.workers.get(restarted.worker)).not.toBe(dead);
    expect(lines).toContainEqual({ level: 'error', obj: { worker: 1, code: 1, signal: null, restartInMs: 250 }, msg: 'worker exited; restarting' });
    // The dead worker's client is gone from the directory.
    inbox.say('2', { pg: 1, t: 'push', id: 61, n: note(UA('f')) });
    expect(await inbox.wait((s) => s.worker === '2' && (s.m.echo as { id?: number } | undefined)?.id === 61, from)).toMatchObject({
      m: { echo: { v: 'absent' } },
    });
  });

  it('stops every worker and exits 2 when a worker refuses the configuration', async () => {
    inbox.workers.get('2')!.send({ exit: 2 });
    await expect(run.done).resolves.toBe(2);
    expect(lines).toContainEqual({ level: 'error', obj: { worker: 2 }, msg: 'worker refused the configuration; stopping' });
    expect(lines).toContainEqual({ level: 'info', obj: { signal: 'SIGTERM' }, msg: 'shutting down: workers drain' });
  });
});

describe('cluster primary shutdown', () => {
  it('on SIGINT has every worker exit and resolves 0', async () => {
    const inbox = new Inbox();
    const { log, lines } = recordingLog();
    cluster.setupPrimary({ exec: SCRIPT, execArgv: [], args: [] });
    const run = start(2, log);
    try {
      await inbox.wait((s) => s.worker === '1' && s.m.ready === true);
      await inbox.wait((s) => s.worker === '2' && s.m.ready === true);
      expect(run.handlers.SIGINT).toHaveLength(1);
      run.handlers.SIGINT[0]!('SIGINT');
      run.handlers.SIGTERM[0]!('SIGTERM'); // a second signal while draining changes nothing
      await expect(run.done).resolves.toBe(0);
      expect(lines.filter((l) => l.msg === 'shutting down: workers drain')).toEqual([
        { level: 'info', obj: { signal: 'SIGINT' }, msg: 'shutting down: workers drain' },
      ]);
      expect(lines.some((l) => l.msg === 'worker exited; restarting')).toBe(false);
    } finally {
      run.cleanup();
    }
  });
});
