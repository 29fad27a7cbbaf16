// The cluster primary (src/cluster/primary.ts) run in the test process against scripted workers
// (fixtures/scripted-worker.mjs): real node:cluster forks and real IPC, but each worker does what the test says,
// so the primary's forking, metrics aggregation, restart and shutdown rules are checked message by message.
import cluster, { type Worker } from 'node:cluster';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeStaleSocketDirs, runPrimary } from '../../src/cluster/primary.js';
import type { PrimaryToWorker, WorkerToPrimary } from '../../src/cluster/ipc.js';

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

  /** The primary's reply to request `id` of worker `w`. */
  reply(w: string, id: number, from: number): Promise<PrimaryToWorker> {
    const echo = (s: Seen) => s.m.echo as { t?: string; id?: number } | undefined;
    return this.wait((s) => s.worker === w && echo(s)?.t === 'reply' && echo(s)?.id === id, from).then((s) => s.m.echo as PrimaryToWorker);
  }

  say(w: string, m: WorkerToPrimary): void {
    this.workers.get(w)!.send({ say: m });
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

describe('cluster primary with scripted workers', () => {
  const inbox = new Inbox();
  const { log, lines } = recordingLog();
  let run: ReturnType<typeof start>;
  let socketDir = '';

  beforeAll(async () => {
    cluster.setupPrimary({ exec: SCRIPT, execArgv: [], args: [] });
    run = start(2, log);
    await inbox.wait((s) => s.worker === '1' && s.m.ready === true);
    await inbox.wait((s) => s.worker === '2' && s.m.ready === true);
  });
  afterAll(() => run.cleanup());

  it('forks each worker with its index, the worker count, a private socket directory and the extra environment', () => {
    const ready = inbox.seen.filter((s) => s.m.ready).map((s) => s.m);
    socketDir = ready[0]!.sockets as string;
    expect(ready).toEqual(
      expect.arrayContaining([
        { ready: true, worker: '1', count: '2', extra: 'extra', sockets: socketDir },
        { ready: true, worker: '2', count: '2', extra: 'extra', sockets: socketDir },
      ]),
    );
    // Only this user can reach the workers' sockets in it; its name carries the primary's pid (removeStaleSocketDirs).
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(basename(socketDir)).toMatch(new RegExp(`^pushgate-w-${process.pid}-`));
  });

  it('logs "cluster listening" once every worker listens', async () => {
    inbox.workers.get('1')!.send({ listen: true });
    await new Promise<void>((resolve) => cluster.once('listening', () => resolve()));
    expect(lines.some((l) => l.msg === 'pushgate cluster listening')).toBe(false);
    inbox.workers.get('2')!.send({ listen: true });
    await new Promise<void>((resolve) => cluster.once('listening', () => resolve()));
    expect(lines.filter((l) => l.msg === 'pushgate cluster listening')).toEqual([{ level: 'info', obj: { workers: 2 }, msg: 'pushgate cluster listening' }]);
  });

  it("answers a worker's metrics request with every worker's metrics aggregated", async () => {
    const from = inbox.seen.length;
    inbox.say('1', { pg: 1, t: 'metrics', id: 50 });
    const reply = (await inbox.reply('1', 50, from)) as { id: number; v: string };
    expect(reply.id).toBe(50);
    expect(reply.v).toMatch(/^scripted_worker_total 2$/m);
  });

  it('restarts a worker that dies, with the same index and socket directory', async () => {
    const from = inbox.seen.length;
    const dead = inbox.workers.get('1')!;
    dead.send({ exit: 1 });
    const restarted = await inbox.wait((s) => s.worker === '1' && s.m.ready === true, from);
    expect(inbox.workers.get(restarted.worker)).not.toBe(dead);
    expect(restarted.m.sockets).toBe(socketDir);
    expect(lines).toContainEqual({ level: 'error', obj: { worker: 1, code: 1, signal: null, restartInMs: 250 }, msg: 'worker exited; restarting' });
  });

  it('stops every worker and exits 2 when a worker refuses the configuration', async () => {
    inbox.workers.get('2')!.send({ exit: 2 });
    await expect(run.done).resolves.toBe(2);
    expect(existsSync(socketDir)).toBe(false);
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

describe('socket directories of primaries that are gone', () => {
  it("removes those whose primary pid is dead, and keeps a live primary's, other names and plain files", () => {
    const base = mkdtempSync(join(tmpdir(), 'pushgate-stale-test-'));
    try {
      // A pid that was alive a moment ago and has exited (as a SIGKILLed primary's).
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      for (const name of [`pushgate-w-${dead}-aaaaaa`, `pushgate-w-${process.pid}-bbbbbb`, 'pushgate-w-x-cccccc', 'other']) {
        mkdirSync(join(base, name));
      }
      mkdirSync(join(base, `pushgate-w-${dead}-aaaaaa`, 'sockets'));
      writeFileSync(join(base, `pushgate-w-${dead}-file`), '');
      expect(removeStaleSocketDirs(base)).toEqual([`pushgate-w-${dead}-aaaaaa`]);
      expect(readdirSync(base).sort()).toEqual([`pushgate-w-${dead}-file`, `pushgate-w-${process.pid}-bbbbbb`, 'pushgate-w-x-cccccc', 'other'].sort());
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
