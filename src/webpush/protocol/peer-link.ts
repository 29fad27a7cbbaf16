import { Ajv } from 'ajv';
import { type Notification, URGENCIES } from '../../store/index.js';
import type { OfferOutcome } from '../connection/clients.js';
import { BASE64URL_PATTERN } from './payload.js';

/**
 * The fleet's peer link: what an endpoint node and a connection node agree on (the client in
 * ../endpoint/peer-client.ts, the server in ../connection/peer-server.ts).
 *
 * The endpoint node opens one persistent connection per connection node: an HTTP/1.1 `GET /link` with
 * `Connection: Upgrade`, `Upgrade: pushgate-peer/1` and `Authorization: Bearer <PUSHGATE_ROUTER_SECRET>`, over TLS
 * when the peer's URL is https (RFC 9110 §7.8: the same upgrade a websocket makes, so the internal port's TLS,
 * secret and failure accounting apply unchanged). After `101 Switching Protocols` both sides speak the frames the
 * workers' mesh speaks (src/cluster/frames.ts): the endpoint sends `push` {id, notification}, `notify` {id, uaid}
 * and `drop` {uaid, connectedAt}; the connection node sends an `answer` {id, value} for each push (its
 * OfferOutcome) and notify (whether the client is there), in any order. A push is one frame each way on an open
 * socket, and frames written in one tick leave in one write: batching when busy, no delay when not (issue 13).
 */

export const LINK_PATH = '/link';
export const LINK_PROTOCOL = 'pushgate-peer/1';

/**
 * A connection node with several workers (PUSHGATE_WORKERS) records each worker's own peer id in its clients'
 * router records: the node's origin (PUSHGATE_PEER_URL) and `/worker/<index>`. An endpoint node dials the peer id
 * followed by LINK_PATH (`GET /worker/2/link`), so it keeps one link per worker that holds clients, and the worker
 * that accepts it on the shared port hands it to the worker named (src/cluster/handoff.ts): each push then arrives
 * at the worker holding its client instead of crossing the workers' mesh. A single-process node's peer id is its
 * origin alone, as before, and its link is `GET /link`.
 */
const WORKER_SEGMENT = '/worker/';
/** The most workers a node may run (PUSHGATE_WORKERS); a larger index in a path is no worker. */
const MAX_WORKER_INDEX = 256;

export function workerPeerId(origin: string, worker: number): string {
  return `${origin}${WORKER_SEGMENT}${worker}`;
}

/** What an endpoint node dials for a peer id (an origin, or a worker's peer id). */
export function linkUrl(peerId: string): string {
  return peerId.replace(/\/$/, '') + LINK_PATH;
}

/**
 * The request target of a link upgrade: `/link` (any worker: `worker` null) or `/worker/<index>/link`; null for
 * anything else (the port answers 404).
 */
export function parseLinkTarget(target: string | undefined): { worker: number | null } | null {
  if (target === LINK_PATH) return { worker: null };
  const m = /^\/worker\/([1-9][0-9]{0,2})\/link$/.exec(target ?? '');
  if (!m) return null;
  const worker = Number(m[1]);
  return worker <= MAX_WORKER_INDEX ? { worker } : null;
}

/** The node a peer id names (its origin), whichever of its workers. */
function nodeOf(peerId: string): string {
  const at = peerId.lastIndexOf(WORKER_SEGMENT);
  return at > 0 && /^[0-9]+$/.test(peerId.slice(at + WORKER_SEGMENT.length)) ? peerId.slice(0, at) : peerId;
}

/**
 * Does a router record's peer id name a node other than this one (`self`: this node's peer id, null when it holds no
 * clients)? A node's workers reach each other over the mesh, never over a link: a node routes its siblings' clients
 * as its own (the mesh finds the holder) and tells no sibling to drop a connection (the mesh's takeover rule does).
 */
export function onOtherNode(recorded: string | null, self: string | null): recorded is string {
  return recorded !== null && (self === null || nodeOf(recorded) !== nodeOf(self));
}

/**
 * The largest frame either side accepts. A push carries at most 4096 payload bytes (5,462 in base64url) plus its
 * headers and fields; anything past this is a bug or an attack, and ends the link rather than being buffered.
 */
export const LINK_MAX_FRAME = 16 * 1024;

/**
 * Pushes a connection node works on at once for one link. Past this it stops reading the link until half have been
 * answered (TCP then holds the endpoint node back): a peer's burst costs bounded memory here.
 */
export const LINK_MAX_INFLIGHT = 4096;

/**
 * What a push hop comes to for the endpoint node: the holder's OfferOutcome, where `no-channel` counts as `absent`
 * (the endpoint then checks the channel itself), or `unanswered` when the holder took the push and did not answer in
 * time. Not an OfferOutcome, since the node said nothing: it may hold the client and has most likely saved the
 * message or is about to (its answer waits for its commit, which a loaded store delays), so the endpoint only saves
 * it too (idempotent: one copy) and keeps the route. Clearing that route, as for a node that is gone, would leave a
 * client still connected there unreachable until it reconnects; asking the node to read storage, or counting the
 * backlog, would add store work exactly when the store is what is slow. A node that cannot be reached, or whose
 * link closes before it answers, is `absent`.
 */
export type PushOutcome = Exclude<OfferOutcome, 'no-channel'> | 'unanswered';

export function pushOutcome(v: OfferOutcome | boolean): PushOutcome {
  return v === 'delivered' || v === 'stored' || v === 'busy' ? v : 'absent';
}

/**
 * A Notification as it must arrive over the link: the one schema of the hop, checked at the connection node's edge
 * before anything of it is used. Both ends of a fleet run the same version (README "A fleet of machines").
 */
const notificationSchema = {
  type: 'object',
  properties: {
    uaid: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    channelID: { type: 'string' },
    seq: { type: 'integer' },
    version: { type: 'string' },
    ttl: { type: 'integer', minimum: 0 },
    expiry: { type: 'integer' },
    topic: { type: ['string', 'null'] },
    urgency: { type: 'string', enum: URGENCIES },
    // Base64url by type from here on (payload.ts): the client's frame writes it without escaping.
    data: { type: ['string', 'null'], pattern: BASE64URL_PATTERN },
    headers: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
    timestamp: { type: 'integer' },
    // Developer dashboard: the hex sha256 of an opted-in VAPID key (src/dashboard/tracker.ts).
    dashboardKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
  required: ['uaid', 'channelID', 'seq', 'version', 'ttl', 'expiry', 'topic', 'urgency', 'data', 'headers', 'timestamp'],
} as const;

const validate = new Ajv({ allowUnionTypes: true }).compile<Notification>(notificationSchema);

export function isNotification(n: unknown): n is Notification {
  return validate(n);
}
