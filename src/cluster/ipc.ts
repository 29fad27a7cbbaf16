import type { OfferOutcome } from '../webpush/connection/clients.js';

/**
 * What the primary and its workers exchange over node:cluster IPC (one source of truth for the shapes), and the
 * environment a worker is forked with. Since pushes and the directory travel directly between workers (mesh.ts,
 * frames.ts), only two things are left here: the metrics request (the primary aggregates every worker's registry)
 * and a fleet's peer link handed to the worker it names (handoff.ts), once per link.
 * Every message carries `pg: 1` so it is never mistaken for prom-client's own cluster messages on the same channel.
 */

/**
 * Where a push offered to the worker holding the client ended: the one table of outcomes (OFFER_OUTCOMES) lives in
 * src/webpush/connection/clients.ts, and the mesh carries the value as it is (frames.ts).
 */
export type { OfferOutcome };

/**
 * `metrics`: the aggregated metrics, answered by `reply`. `link`: a peer link's socket, sent with the message as its
 * handle, for worker `to` (handoff.ts); the primary passes it on as it is, with the bytes the accepting worker had
 * already read after the request (`head`, base64).
 */
export type WorkerToPrimary = { pg: 1; t: 'metrics'; id: number } | { pg: 1; t: 'link'; to: number; head: string };

export type PrimaryToWorker = { pg: 1; t: 'reply'; id: number; /** The aggregated metrics text. */ v: string } | { pg: 1; t: 'link'; head: string };

export function isPushgateMessage<T extends { pg: 1 }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && (m as { pg?: unknown }).pg === 1 && typeof (m as { t?: unknown }).t === 'string';
}

/** The environment variable that tells a forked worker its stable index (1..N); worker 1 runs the XMPP components. */
export const WORKER_INDEX_ENV = 'PUSHGATE_WORKER_INDEX';
export const WORKER_COUNT_ENV = 'PUSHGATE_WORKER_COUNT';
/**
 * The private (0700) directory the primary creates for the workers' sockets: worker i listens on `w<i>.sock` there.
 * The directory's mode is the access control: only this user's processes can connect.
 */
export const WORKER_SOCKETS_ENV = 'PUSHGATE_WORKER_SOCKETS';

/**
 * A secret the primary makes at start (random, 32 bytes, hex) and hands each worker at fork: a worker's first frame
 * on a mesh connection presents it, so a socket is never open without a secret even if the directory's mode were
 * wrong. Each worker removes it from its environment once read.
 */
export const WORKER_SECRET_ENV = 'PUSHGATE_WORKER_SECRET';
/** Its length in bytes. */
export const WORKER_SECRET_BYTES = 32;

/** The socket worker `index` listens on. */
export function workerSocketPath(dir: string, index: number): string {
  return `${dir}/w${index}.sock`;
}
