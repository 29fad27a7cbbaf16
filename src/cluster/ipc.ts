import type { Notification } from '../store/index.js';
import type { OfferOutcome } from '../webpush/connection/clients.js';

/**
 * The messages workers and the primary exchange over node:cluster IPC (one source of truth for their shapes).
 * Every message carries `pg: 1` so it is never mistaken for prom-client's own cluster messages on the same channel.
 *
 * worker → primary: `attach`/`detach` keep the primary's uaid → worker directory; `drop` asks the holder
 * of a uaid to close a connection older than connectedAt (a takeover from another machine); `push`, `notify` and `metrics`
 * are requests answered by a `reply` with the same id.
 * primary → worker: `push` and `notify` (forwarded requests, answered by `answer`), `drop` (a newer connection of
 * the uaid attached to another worker), `attached` (a notify for this uaid found no holder just before this
 * client attached: look at storage once more).
 */

/** Where a push offered to a sibling worker ended: the one table of outcomes lives in src/webpush/connection/clients.ts. */
export type { OfferOutcome };

export type WorkerToPrimary =
  | { pg: 1; t: 'attach'; uaid: string; connectedAt: number }
  | { pg: 1; t: 'detach'; uaid: string; connectedAt: number }
  | { pg: 1; t: 'drop'; uaid: string; connectedAt: number }
  | { pg: 1; t: 'push'; id: number; n: Notification }
  | { pg: 1; t: 'notify'; id: number; uaid: string }
  | { pg: 1; t: 'metrics'; id: number }
  | { pg: 1; t: 'answer'; id: number; v: OfferOutcome | boolean };

export type PrimaryToWorker =
  | { pg: 1; t: 'reply'; id: number; /** An offer's outcome, a notify's answer, or the metrics text. */ v: boolean | string }
  | { pg: 1; t: 'push'; id: number; n: Notification }
  | { pg: 1; t: 'notify'; id: number; uaid: string }
  | { pg: 1; t: 'drop'; uaid: string; connectedAt: number }
  | { pg: 1; t: 'attached'; uaid: string; connectedAt: number };

export function isPushgateMessage<T extends { pg: 1 }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && (m as { pg?: unknown }).pg === 1 && typeof (m as { t?: unknown }).t === 'string';
}

/** The environment variable that tells a forked worker its stable index (1..N); worker 1 runs the XMPP components. */
export const WORKER_INDEX_ENV = 'PUSHGATE_WORKER_INDEX';
export const WORKER_COUNT_ENV = 'PUSHGATE_WORKER_COUNT';
