import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { type Notification, URGENCIES } from '../../store/index.js';
import { type ClientRegistry, type OfferOutcome, offerToClient } from './clients.js';
import type { Siblings } from '../../cluster/worker.js';
import { CloseCode } from '../protocol/websocket.js';
import { secretMatches } from '../protocol/peer-auth.js';
import { authFailed, type Metrics } from '../../ops/metrics.js';

/** The most pushes one `PUT /push` batch carries (the peer client's batches, refused beyond). */
export const PEER_BATCH_MAX = 64;
/**
 * Room for one notification in a batch's body. The limit was 64 KiB for a whole batch, which 64 pushes of 1 kB
 * (1.4 kB in base64) overflow: the peer answered 413, and the endpoint read each push of that batch as "client not
 * here" and cleared its route.
 */
const PEER_NOTIFICATION_MAX_BYTES = 8 * 1024;

/**
 * The peer API's status for each OfferOutcome (the table in clients.ts), and back: 200 delivered (sent, and acked or saved
 * by this node), 202 stored (saved here for the client's next storage read), 409 busy (here, but not saved here: the
 * endpoint node stores it), 404 absent or no such channel. Both ends of a fleet run the same version (fleets upgrade
 * together: README "A fleet of machines").
 */
export const PEER_STATUS: Readonly<Record<OfferOutcome, number>> = { delivered: 200, stored: 202, busy: 409, absent: 404, 'no-channel': 404 };

/**
 * The peer client's status for a request the node took and did not answer in time. Not an OfferOutcome (the node
 * said nothing) but `unanswered`: the node may hold the client and has most likely saved the message or is about to
 * (its answer waits for its commit, which a loaded store delays), so the endpoint only saves it too (idempotent: one
 * copy) and keeps the route. Clearing that route, as for a node that is gone, would leave a client still connected
 * there unreachable until it reconnects; asking the node to read storage, or counting the backlog, would add store
 * work exactly when the store is what is slow.
 */
export const PEER_NO_ANSWER = -1;

/** The outcome a peer's status means to the endpoint node; anything else (404, an error, unreachable: 0) is `absent`. */
export function peerOutcome(status: number): 'delivered' | 'stored' | 'busy' | 'absent' | 'unanswered' {
  if (status === PEER_NO_ANSWER) return 'unanswered';
  return status === 200 ? 'delivered' : status === 202 ? 'stored' : status === 409 ? 'busy' : 'absent';
}

/**
 * The internal node-to-node API of a connection node (autopush's "router" port), on its own listener that
 * is never the public one:
 * - `PUT /push/{uaid}` a notification for a client held here, which this node saves (deliverDurably): 200 once
 *   written to its socket and saved; 202 when the client must read it from storage and it was saved here; 409
 *   when it was not saved here (TTL 0, or the save failed); 404 when the client is not here (PEER_STATUS; the
 *   endpoint node stores it on anything but 200 and 202);
 * - `PUT /push` a batch of such notifications (an array, at most PEER_BATCH_MAX): answers the array of their
 *   statuses, in order (the endpoint node batches when every connection to this node is busy);
 * - `PUT /notif/{uaid}` storage holds new messages for the client: 200 when it is here, 404 otherwise;
 * - `DELETE /notif/{uaid}/{connectedAt}` the client connected to another node at connectedAt: drop the
 *   older connection held here.
 */
export interface PeerServerOptions {
  clients: ClientRegistry;
  /** Required: the internal port accepts nothing without it (config refuses PUSHGATE_ROUTER_PORT alone). */
  secret: string;
  log: FastifyBaseLogger;
  /** With several workers the internal port is shared: a client held by a sibling worker is reached over the workers' mesh. */
  siblings?: Siblings | null;
  metrics: Metrics;
  /** PEM key and certificate: serve the internal port over https (PUSHGATE_ROUTER_TLS_CERT/KEY). */
  tls: { key: Buffer; cert: Buffer } | null;
}

const uaidParams = { type: 'object', properties: { uaid: { type: 'string', pattern: '^[0-9a-f]{32}$' } }, required: ['uaid'] } as const;

const notificationBody = {
  type: 'object',
  properties: {
    uaid: { type: 'string' },
    channelID: { type: 'string' },
    seq: { type: 'integer' },
    version: { type: 'string' },
    ttl: { type: 'integer', minimum: 0 },
    expiry: { type: 'integer' },
    topic: { type: ['string', 'null'] },
    urgency: { type: 'string', enum: URGENCIES },
    data: { type: ['string', 'null'] },
    headers: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
    timestamp: { type: 'integer' },
    // Developer dashboard: the hex sha256 of an opted-in VAPID key (src/dashboard/tracker.ts).
    dashboardKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
  required: ['uaid', 'channelID', 'seq', 'version', 'ttl', 'expiry', 'topic', 'urgency', 'data', 'headers', 'timestamp'],
} as const;

export function createPeerServer(opts: PeerServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    // A full batch of the largest pushes: 4096 payload bytes are 5,462 in base64url, plus headers and fields.
    bodyLimit: PEER_BATCH_MAX * PEER_NOTIFICATION_MAX_BYTES,
    ajv: { customOptions: { allowUnionTypes: true } },
    forceCloseConnections: 'idle',
    ...(opts.tls ? { https: opts.tls } : {}),
  }) as unknown as FastifyInstance;
  const { clients, secret } = opts;
  const offer = async (n: Notification) => {
    const outcome = await offerToClient(clients, n);
    return outcome === 'absent' && opts.siblings ? opts.siblings.push(n) : outcome;
  };

  app.addHook('onRequest', async (request, reply) => {
    const presented = request.headers.authorization;
    if (!secretMatches(presented, secret)) {
      // Issue 9 §17: counted and logged, never with what was presented.
      authFailed(opts.metrics, opts.log, 'router', presented === undefined ? 'missing' : 'mismatch', { remote: request.ip });
      return reply.code(401).send({ error: 'unauthorized' });
    }
  });

  app.put<{ Params: { uaid: string }; Body: Notification }>(
    '/push/:uaid',
    { schema: { params: uaidParams, body: notificationBody } },
    async (request, reply) => {
      if (request.body.uaid !== request.params.uaid) return reply.code(404).send({ delivered: false });
      const outcome = await offer(request.body);
      return reply.code(PEER_STATUS[outcome]).send({ delivered: outcome === 'delivered' });
    },
  );

  app.put<{ Body: Notification[] }>(
    '/push',
    {
      schema: {
        body: {
          type: 'array',
          maxItems: PEER_BATCH_MAX,
          items: { ...notificationBody, properties: { ...notificationBody.properties, uaid: uaidParams.properties.uaid } },
        },
      },
    },
    async (request) => Promise.all(request.body.map(async (n) => PEER_STATUS[await offer(n)])),
  );

  app.put<{ Params: { uaid: string } }>('/notif/:uaid', { schema: { params: uaidParams } }, async (request, reply) => {
    const client = clients.get(request.params.uaid);
    if (client) client.storageChanged();
    else if (!(await opts.siblings?.notify(request.params.uaid))) return reply.code(404).send({ notified: false });
    return { notified: true };
  });

  app.delete<{ Params: { uaid: string; connectedAt: number } }>(
    '/notif/:uaid/:connectedAt',
    {
      schema: {
        params: { type: 'object', properties: { uaid: uaidParams.properties.uaid, connectedAt: { type: 'integer' } }, required: ['uaid', 'connectedAt'] },
      },
    },
    async (request) => {
      const client = clients.get(request.params.uaid);
      if (client && client.connectedAt < request.params.connectedAt) {
        client.close(CloseCode.normal, 'a newer connection of this uaid took over');
        return { dropped: true };
      }
      // With several workers the holder may be a sibling: it applies the same rule.
      if (!client) opts.siblings?.dropOlder(request.params.uaid, request.params.connectedAt);
      return { dropped: false };
    },
  );

  return app;
}
