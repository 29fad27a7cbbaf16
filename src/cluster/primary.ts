import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AggregatorRegistry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import {
  type PrimaryToWorker,
  type WorkerToPrimary,
  WORKER_COUNT_ENV,
  WORKER_INDEX_ENV,
  WORKER_SECRET_BYTES,
  WORKER_SECRET_ENV,
  WORKER_SOCKETS_ENV,
  isPushgateMessage,
} from './ipc.js';

/**
 * The primary process of `pushgate serve` with PUSHGATE_WORKERS > 1. It serves no client itself: it forks the
 * workers (which share the public listeners through node:cluster), restarts one that dies with a growing delay,
 * answers the workers' /metrics with every worker's metrics aggregated, passes a fleet's peer link on to the worker
 * it names (handoff.ts, once per link), and on SIGTERM/SIGINT has every worker drain and exit. It is on no
 * message's path: the workers keep the directory themselves and hand pushes to each other over unix sockets in a
 * private directory the primary creates (mesh.ts); it only names that directory.
 */

/** The exit code of `pushgate serve` for an invalid configuration: restarting cannot help. */
const CONFIG_EXIT = 2;
/** A worker that dies within this long of starting counts as a crash loop: its restart waits longer each time. */
const STABLE_MS = 30_000;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
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

/** The workers' socket directories: `pushgate-w-<primary pid>-<random>` under the temp directory. */
const SOCKET_DIR_PREFIX = 'pushgate-w-';
const SOCKET_DIR_NAME = new RegExp(`^${SOCKET_DIR_PREFIX}(\\d+)-`);

/**
 * Removes socket directories that primaries killed without a chance to clean up (SIGKILL, a power loss of a
 * container with a persistent /tmp) left under `base`: those of this user whose primary's pid is no longer alive.
 * A live primary's directory is never touched; one whose pid was reused by another process stays (harmless: a
 * few empty sockets). Returns the names removed.
 */
export function removeStaleSocketDirs(base: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = SOCKET_DIR_NAME.exec(name);
    if (!m) continue;
    const path = join(base, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      if (pidAlive(Number(m[1]))) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs the primary until every worker has exited after a shutdown signal; resolves with the exit code. */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts;
  // mkdtemp creates it 0700: only this user's processes can reach the workers' sockets. Short (under the temp
  // directory, not the data directory) since a unix socket path is limited to about 100 bytes.
  // Named with this primary's pid, so that a later primary can tell a dead one's leftovers from a live one's.
  const stale = removeStaleSocketDirs(tmpdir());
  if (stale.length > 0) log.info({ removed: stale }, 'removed socket directories of primaries that are gone');
  const socketDir = mkdtempSync(join(tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-`));
  const secret = randomBytes(WORKER_SECRET_BYTES).toString('hex');
  // The workers accept connections themselves (docs/benchmarks.md "Scale-out runs": round-robin had the primary accept and
  // hand over every connection, 170 µs of its CPU each, a one-core ceiling on connects for the whole machine).
  // Node's own NODE_CLUSTER_SCHED_POLICY still decides when set.
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({ index: i + 1, worker: null, startedAt: 0, failures: 0 }));
  const byWorkerId = new Map<number, Slot>();
  const aggregator = new AggregatorRegistry();
  let stopping = false;

  const send = (w: Worker | null | undefined, m: PrimaryToWorker) => {
    if (w && w.isConnected()) w.send(m);
  };

  const fork = (slot: Slot) => {
    const worker = cluster.fork({
      ...opts.env,
      [WORKER_INDEX_ENV]: String(slot.index),
      [WORKER_COUNT_ENV]: String(opts.workers),
      [WORKER_SOCKETS_ENV]: socketDir,
      [WORKER_SECRET_ENV]: secret,
    });
    slot.worker = worker;
    slot.startedAt = Date.now();
    byWorkerId.set(worker.id, slot);
    worker.on('message', (m: unknown, handle: unknown) => {
      if (!isPushgateMessage<WorkerToPrimary>(m)) return;
      if (m.t === 'link') passLink(m.to, m.head, handle as Socket | undefined);
      else onMessage(worker, m);
    });
  };

  /**
   * A fleet's peer link accepted by one worker for worker `to` (handoff.ts), passed on as it is. Once per link, so
   * the primary stays off the message path. This process's copy is closed as soon as the message is written (see
   * handoff.ts for why not at the acknowledgement). Closing it also matters at shutdown: node:child_process counts a
   * socket a server's worker sent away as open until the receiving process closes its copy, and the accepting
   * worker's `server.close()` would wait for it forever (tried: without it, a worker's close never completes).
   */
  const passLink = (to: number, head: string, socket: Socket | undefined) => {
    if (!socket) return;
    const target = slots[to - 1]?.worker;
    // Not running (restarting): the endpoint node sees the link close and dials again; meanwhile its pushes are stored.
    if (!target || !target.isConnected()) return void socket.destroy();
    target.send({ pg: 1, t: 'link', head } satisfies PrimaryToWorker, socket, { keepOpen: true }, () => socket.destroy());
  };

  /** The request a worker makes of the primary: every worker's metrics, aggregated. */
  const onMessage = (from: Worker, m: WorkerToPrimary & { t: 'metrics' }) => {
    aggregator.clusterMetrics().then(
      (text) => send(from, { pg: 1, t: 'reply', id: m.id, v: text }),
      (err: unknown) => {
        log.warn({ err: (err as Error).message }, 'metrics aggregation failed');
        send(from, { pg: 1, t: 'reply', id: m.id, v: '' });
      },
    );
  };

  let exitCode = 0;
  const listening = new Set<number>();
  /** Restarts waiting out their back-off; cleared at shutdown. */
  const restarts = new Set<NodeJS.Timeout>();
  return new Promise((settle) => {
    const resolve = (code: number) => {
      rmSync(socketDir, { recursive: true, force: true });
      settle(code);
    };
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
      // Not unref'd: with every worker dead at once, this timer is what keeps the primary alive to restart them.
      const timer = setTimeout(() => {
        restarts.delete(timer);
        if (!stopping) fork(slot);
      }, delay);
      restarts.add(timer);
    });

    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      for (const timer of restarts) clearTimeout(timer);
      restarts.clear();
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
