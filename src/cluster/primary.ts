import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { BoundedMap } from '../util/bounded-map.js';
import { ClientDirectory } from './directory.js';
import { type OfferOutcome, type PrimaryToWorker, type WorkerToPrimary, WORKER_COUNT_ENV, WORKER_INDEX_ENV, isPushgateMessage } from './ipc.js';

/**
 * The primary process of `pushgate serve` with PUSHGATE_WORKERS > 1. It serves no client itself: it forks the
 * workers (which share the public listeners through node:cluster), restarts one that dies with a growing delay,
 * keeps the directory of which worker holds which uaid and relays pushes between workers over IPC, answers the
 * workers' /metrics with every worker's metrics aggregated, and on SIGTERM/SIGINT has every worker drain and exit.
 */

/** The exit code of `pushgate serve` for an invalid configuration: restarting cannot help. */
const CONFIG_EXIT = 2;
/** A worker that dies within this long of starting counts as a crash loop: its restart waits longer each time. */
const STABLE_MS = 30_000;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/**
 * A notify that found no holder is remembered this long (and at most MISSES_KEPT of them): a client whose attach
 * arrives after such a notify may have read storage before that message was saved, so it is told to look again.
 * Remembering only misses spares every other connection a second storage read.
 */
const MISS_WINDOW_MS = 60_000;
const MISSES_KEPT = 100_000;

interface Slot {
  index: number;
  worker: Worker | null;
  startedAt: number;
  failures: number;
}

export interface PrimaryOptions {
  workers: number;
  log: FastifyBaseLogger;
  /** Extra environment for every worker. */
  env?: Record<string, string>;
  /**
   * The public port: a worker counts as listening once it listens there. Its other listeners (the internal peer
   * port, the MongoosePush and metrics ports) open first, so counting any listener would announce too early.
   */
  port?: number;
}

/** Runs the primary until every worker has exited after a shutdown signal; resolves with the exit code. */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts;
  const directory = new ClientDirectory();
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({ index: i + 1, worker: null, startedAt: 0, failures: 0 }));
  const byWorkerId = new Map<number, Slot>();
  const aggregator = new AggregatorRegistry();
  const recentMisses = new BoundedMap<string, number>(MISSES_KEPT);
  // Requests forwarded to a worker, by the primary's id: who asked, with which id, and the answer if the target dies.
  let nextId = 1;
  const forwarded = new Map<number, { from: Worker; id: number; target: number; ifLost: OfferOutcome | boolean }>();
  let stopping = false;

  const send = (w: Worker | null | undefined, m: PrimaryToWorker) => {
    if (w && w.isConnected()) w.send(m);
  };

  const fork = (slot: Slot) => {
    const worker = cluster.fork({ ...opts.env, [WORKER_INDEX_ENV]: String(slot.index), [WORKER_COUNT_ENV]: String(opts.workers) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    byWorkerId.set(worker.id, slot);
    worker.on('message', (m: unknown) => {
      if (isPushgateMessage<WorkerToPrimary>(m)) onMessage(slot, worker, m);
    });
  };

  const onMessage = (slot: Slot, from: Worker, m: WorkerToPrimary) => {
    switch (m.t) {
      case 'attach': {
        const drop = directory.attach(m.uaid, slot.index, m.connectedAt);
        if (drop) send(slots[drop.worker - 1]!.worker, { pg: 1, t: 'drop', uaid: m.uaid, connectedAt: drop.olderThan });
        // A notify for this uaid handled before this attach found no holder: the client looks at storage again.
        const missedAt = recentMisses.get(m.uaid);
        if (missedAt !== undefined) {
          recentMisses.delete(m.uaid);
          if (Date.now() - missedAt < MISS_WINDOW_MS) send(from, { pg: 1, t: 'attached', uaid: m.uaid, connectedAt: m.connectedAt });
        }
        return;
      }
      case 'detach':
        directory.detach(m.uaid, slot.index, m.connectedAt);
        return;
      case 'drop': {
        const holder = directory.holder(m.uaid);
        if (holder !== undefined) send(slots[holder - 1]!.worker, m);
        return;
      }
      case 'push':
      case 'notify': {
        const ifLost = m.t === 'push' ? ('absent' as const) : false;
        const holder = directory.holder(m.t === 'push' ? m.n.uaid : m.uaid);
        const target = holder !== undefined && holder !== slot.index ? slots[holder - 1]!.worker : null;
        if (!target || !target.isConnected()) {
          if (m.t === 'notify' && holder === undefined) recentMisses.set(m.uaid, Date.now());
          return send(from, { pg: 1, t: 'reply', id: m.id, v: ifLost });
        }
        const id = nextId++;
        forwarded.set(id, { from, id: m.id, target: holder!, ifLost });
        send(target, m.t === 'push' ? { pg: 1, t: 'push', id, n: m.n } : { pg: 1, t: 'notify', id, uaid: m.uaid });
        return;
      }
      case 'answer': {
        const f = forwarded.get(m.id);
        if (!f) return;
        forwarded.delete(m.id);
        send(f.from, { pg: 1, t: 'reply', id: f.id, v: m.v });
        return;
      }
      case 'metrics':
        aggregator.clusterMetrics().then(
          (text) => send(from, { pg: 1, t: 'reply', id: m.id, v: text }),
          (err: unknown) => {
            log.warn({ err: (err as Error).message }, 'metrics aggregation failed');
            send(from, { pg: 1, t: 'reply', id: m.id, v: '' });
          },
        );
        return;
    }
  };

  let exitCode = 0;
  const listening = new Set<number>();
  return new Promise((resolve) => {
    cluster.on('listening', (worker, address) => {
      if (opts.port !== undefined && opts.port !== 0 && address.port !== opts.port) return;
      const slot = byWorkerId.get(worker.id);
      if (!slot || listening.has(slot.index)) return;
      listening.add(slot.index);
      if (listening.size === slots.length) log.info({ workers: slots.length }, 'pushgate cluster listening');
    });
    cluster.on('exit', (worker, code, signal) => {
      const slot = byWorkerId.get(worker.id);
      byWorkerId.delete(worker.id);
      if (!slot) return;
      slot.worker = null;
      directory.forgetWorker(slot.index);
      for (const [id, f] of forwarded) {
        if (f.target !== slot.index) continue;
        forwarded.delete(id);
        send(f.from, { pg: 1, t: 'reply', id: f.id, v: f.ifLost });
      }
      if (code === CONFIG_EXIT && !stopping) {
        log.error({ worker: slot.index }, 'worker refused the configuration; stopping');
        exitCode = CONFIG_EXIT;
        stop('SIGTERM');
      }
      if (stopping) {
        if (slots.every((s) => s.worker === null)) resolve(exitCode);
        return;
      }
      slot.failures = Date.now() - slot.startedAt < STABLE_MS ? slot.failures + 1 : 1;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (slot.failures - 1));
      log.error({ worker: slot.index, code, signal, restartInMs: delay }, 'worker exited; restarting');
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, delay).unref();
    });

    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: workers drain');
      // Each worker runs its own graceful close (clients told to reconnect, in-flight requests finished).
      for (const s of slots) s.worker?.process.kill('SIGTERM');
      if (slots.every((s) => s.worker === null)) resolve(exitCode);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));

    for (const slot of slots) fork(slot);
  });
}
