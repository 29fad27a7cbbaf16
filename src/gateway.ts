import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from './config.js';
import { loggerOptions } from './log.js';
import { Metrics } from './ops/metrics.js';
import { opsRoutes } from './ops/routes.js';
import { openStore, type Store } from './store/index.js';
import { ClientRegistry } from './webpush/connection/clients.js';
import { ConnectionServer } from './webpush/connection/server.js';
import { ApiError } from './webpush/protocol/errors.js';
import { endpointRoutes, sendError } from './webpush/endpoint/routes.js';
import { VapidVerifier } from './webpush/endpoint/vapid.js';
import { WebPushRouter } from './webpush/endpoint/router.js';
import { PeerClient } from './webpush/endpoint/peer-client.js';
import { createPeerServer } from './webpush/connection/peer-server.js';
import { Bridges, loadBridges } from './bridge/index.js';
import { registrationRoutes } from './webpush/endpoint/registration.js';
import { mongoosePushRoutes } from './mongoosepush/routes.js';
import { PushComponent } from './xmpp/component.js';
import type { HandlerContext } from './xmpp/handler.js';
import { NodeRateLimiter } from './xmpp/rate-limit.js';
import { WebPushSender } from './xmpp/webpush-sender.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { DashboardTracker } from './dashboard/tracker.js';

/** How often expired messages are swept from storage (they are never delivered either way). */
const SWEEP_INTERVAL_MS = 60_000;

export interface Gateway {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly store: Store;
  readonly clients: ClientRegistry;
  readonly metrics: Metrics;
  readonly vapid: VapidVerifier;
  readonly bridges: Bridges;
  /** The websocket server; null on an endpoint-only node. */
  readonly connections: ConnectionServer | null;
  /** One XEP-0114 component per configured XMPP server. */
  readonly xmpp: PushComponent[];
  /** The internal node-to-node listener; null unless PUSHGATE_ROUTER_PORT is set. */
  readonly peerServer: FastifyInstance | null;
  /** Records the pushes of keys opted in to the developer dashboard. */
  readonly dashboard: DashboardTracker;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** Use this store instead of opening PUSHGATE_STORE (tests). */
  store?: Store;
  /** Replace the JSON logger (tests pass false). */
  logger?: boolean;
}

/**
 * Builds a gateway from its configuration: store, routes, websocket server, internal listener, metrics.
 * Nothing is global. PUSHGATE_ROLE decides which doors this node opens.
 */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const metrics = new Metrics();
  // Bridges first: bad credentials stop the start before anything listens.
  const bridges = config.bridges ? loadBridges(config.bridges, metrics) : Bridges.empty();
  const store = options.store ?? (await openStore(config.store));
  const clients = new ClientRegistry();
  const tls = config.tlsCert && config.tlsKey ? { key: readFileSync(config.tlsKey), cert: readFileSync(config.tlsCert) } : null;
  const logger = (options.logger === false ? false : loggerOptions(config.logLevel)) as ReturnType<typeof loggerOptions>;
  // With TLS the listener speaks HTTP/2 to application servers and HTTP/1.1 (for websockets) to browsers.
  // Request lines are not logged: their URLs carry endpoint tokens and message ids.
  const common = {
    logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Endpoint tokens and message ids are long Fernet tokens.
    routerOptions: { maxParamLength: 1024 },
    // Unknown fields are refused, not silently dropped.
    ajv: { customOptions: { allowUnionTypes: true, removeAdditional: false } },
  };
  const app = (tls
    ? Fastify({ ...common, http2: true, https: { allowHTTP1: true, ...tls } } as Parameters<typeof Fastify>[0])
    : Fastify({ ...common, forceCloseConnections: 'idle' })) as unknown as FastifyInstance;

  const serveConnections = config.role !== 'endpoint';
  const serveEndpoints = config.role !== 'connection';
  // Routes to other nodes only where routes can be recorded: a fleet shares one store.
  const peers = config.role !== 'all' || config.routerPort !== null ? new PeerClient(config.routerSecret) : null;
  const peerId = serveConnections ? config.peerUrl : null;
  const router = new WebPushRouter(store, clients, config.fernet, metrics, config.msgLimit, peerId, peers, bridges);
  const vapid = new VapidVerifier(config.publicUrl, config.vapidClockSkew);
  const dashboard = new DashboardTracker({
    store,
    fernet: config.fernet,
    vapid,
    // Derived from the crypto key, so every peer of a fleet hashes a subscription the same way.
    secret: createHmac('sha256', config.cryptoKey).update('pushgate dashboard subscription hash').digest(),
    maxMessages: config.dashboardMaxMessages,
    maxHours: config.dashboardMaxHours,
    maxKeys: config.dashboardMaxKeys,
    flushMs: config.dashboardFlushMs,
    log: app.log,
  });
  await dashboard.start();
  const connections = serveConnections
    ? new ConnectionServer(
        {
          store,
          clients,
          fernet: config.fernet,
          metrics,
          log: app.log,
          publicUrl: config.publicUrl,
          peerId,
          peers,
          msgLimit: config.msgLimit,
          storageBatch: config.storageBatch,
          helloTimeoutMs: config.helloTimeout * 1000,
          minPingIntervalMs: config.minPingInterval * 1000,
          dashboard,
        },
        { maxFrameBytes: config.maxFrameBytes, wsPingIntervalMs: config.wsPingInterval * 1000 },
      )
    : null;
  const peerServer = serveConnections && config.routerPort !== null ? createPeerServer({ clients, secret: config.routerSecret, log: app.log }) : null;

  // Every XMPP server's component shares one context; only the component JID differs.
  const xmppShared: Omit<HandlerContext, 'jid'> | null = config.xmppServers.length === 0 ? null : {
    store,
    bridges,
    metrics,
    limiter: new NodeRateLimiter(config.xmppRateLimit, config.xmppRateBurst),
    webpush: new WebPushSender(config.publicUrl, config.fernet, serveEndpoints ? router : null, {
      publicKey: config.vapidPublicKey,
      privateKey: config.vapidPrivateKey,
      subject: config.vapidSubject,
    }),
    publishOptionsDomains: new Set(config.xmppPublishOptionsDomains.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean)),
    maxStanzaBytes: config.xmppMaxStanza,
    log: app.log,
  };
  const xmpp = config.xmppServers.map((s) => new PushComponent(s, { ...xmppShared!, jid: s.domain }));

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new ApiError('invalidUrl', 'Not found')));
  app.register(opsRoutes, { store, metrics, connections: () => connections?.size ?? 0 });
  app.register(dashboardRoutes, {
    store,
    vapid,
    metrics,
    tracker: dashboard,
    publicUrl: config.publicUrl,
    maxMessages: config.dashboardMaxMessages,
    maxHours: config.dashboardMaxHours,
    xmppDomains: config.xmppServers.map((s) => s.domain),
  });
  if (serveEndpoints) {
    app.register(endpointRoutes, { fernet: config.fernet, router, vapid, store, metrics, publicUrl: config.publicUrl, dashboard });
    app.register(registrationRoutes, { store, bridges, fernet: config.fernet, authKeys: config.authKeyList, publicUrl: config.publicUrl });
    app.register(mongoosePushRoutes, { bridges });
  }
  app.server.on('upgrade', (req, socket, head) => {
    if (connections) connections.handleUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  const sweeper = setInterval(() => {
    store.sweepExpired(Date.now()).catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'sweep failed'));
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();

  let closed: Promise<void> | undefined;
  return {
    app,
    config,
    store,
    clients,
    metrics,
    vapid,
    bridges,
    connections,
    xmpp,
    peerServer,
    dashboard,
    async listen() {
      if (peerServer) await peerServer.listen({ port: config.routerPort!, host: config.routerHost });
      await app.listen({ port: config.port, host: config.host });
      // The XMPP links come up (and back) by themselves; the gateway does not wait for them.
      for (const c of xmpp) c.start();
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      return `${tls ? 'https' : 'http'}://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
    },
    close() {
      closed ??= (async () => {
        clearInterval(sweeper);
        // Clients first: they are told to reconnect and their unacked messages are stored;
        // then the listener stops and in-flight requests finish; the store closes last.
        await Promise.all(xmpp.map((c) => c.stop()));
        await connections?.close();
        await peerServer?.close();
        // In-flight requests get PUSHGATE_SHUTDOWN_GRACE seconds; then remaining connections are cut.
        const grace = setTimeout(() => {
          const server = app.server as { closeAllConnections?: () => void };
          server.closeAllConnections?.();
        }, config.shutdownGrace * 1000);
        grace.unref();
        await app.close();
        clearTimeout(grace);
        await bridges.close();
        await dashboard.close();
        await store.close();
      })();
      return closed;
    },
  };
}
