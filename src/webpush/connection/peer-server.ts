import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { type Notification, URGENCIES } from '../../store/index.js';
import type { ClientRegistry } from './clients.js';
import { CloseCode } from '../protocol/websocket.js';
import { secretMatches } from '../protocol/peer-auth.js';
import { authFailed, type Metrics } from '../../ops/metrics.js';

/**
 * The internal node-to-node API of a connection node (autopush's "router" port), on its own listener that
 * is never the public one:
 * - `PUT /push/{uaid}` a notification for a client held here: 200 once written to its socket; 409 when the
 *   client is here but must read it from storage; 404 when the client is not here (the endpoint node stores
 *   it either way);
 * - `PUT /notif/{uaid}` storage holds new messages for the client: 200 when it is here, 404 otherwise;
 * - `DELETE /notif/{uaid}/{connectedAt}` the client connected to another node at connectedAt: drop the
 *   older connection held here.
 */
export interface PeerServerOptions {
  clients: ClientRegistry;
  /** Required: the internal port accepts nothing without it (config refuses PUSHGATE_ROUTER_PORT alone). */
  secret: string;
  log: FastifyBaseLogger;
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
  },
  required: ['uaid', 'channelID', 'seq', 'version', 'ttl', 'expiry', 'topic', 'urgency', 'data', 'headers', 'timestamp'],
} as const;

export function createPeerServer(opts: PeerServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { allowUnionTypes: true } },
    forceCloseConnections: 'idle',
    ...(opts.tls ? { https: opts.tls } : {}),
  }) as unknown as FastifyInstance;
  const { clients, secret } = opts;

  app.addHook('onRequest', async (request, reply) => {
    const presented = request.headers.authorization;
    if (!secretMatches(presented, secret)) {
      // Issue 9 §17: counted and logged, never with what was presented.
      authFailed(opts.metrics, opts.log, 'router', presented === undefined ? 'missing' : 'mismatch', { remote: request.ip });
      return reply.code(401).send({ error: 'unauthorized' });
    }
  });

  app.put<{ Params: { uaid: string }; Body: Notification }>('/push/:uaid', { schema: { params: uaidParams, body: notificationBody } }, async (request, reply) => {
    const client = clients.get(request.params.uaid);
    if (!client || request.body.uaid !== request.params.uaid || !client.channels.has(request.body.channelID)) {
      return reply.code(404).send({ delivered: false });
    }
    const outcome = await new Promise<'written' | 'busy' | 'failed'>((resolve) => {
      if (!client.deliverDirect(request.body, (err) => resolve(err ? 'failed' : 'written'))) resolve('busy');
    });
    // 409: the client is here but draining storage, so the message must queue in storage behind the rest.
    return reply.code(outcome === 'written' ? 200 : outcome === 'busy' ? 409 : 404).send({ delivered: outcome === 'written' });
  });

  app.put<{ Params: { uaid: string } }>('/notif/:uaid', { schema: { params: uaidParams } }, async (request, reply) => {
    const client = clients.get(request.params.uaid);
    if (!client) return reply.code(404).send({ notified: false });
    client.storageChanged();
    return { notified: true };
  });

  app.delete<{ Params: { uaid: string; connectedAt: number } }>(
    '/notif/:uaid/:connectedAt',
    { schema: { params: { type: 'object', properties: { uaid: uaidParams.properties.uaid, connectedAt: { type: 'integer' } }, required: ['uaid', 'connectedAt'] } } },
    async (request) => {
      const client = clients.get(request.params.uaid);
      if (client && client.connectedAt < request.params.connectedAt) {
        client.close(CloseCode.normal, 'a newer connection of this uaid took over');
        return { dropped: true };
      }
      return { dropped: false };
    },
  );

  return app;
}

