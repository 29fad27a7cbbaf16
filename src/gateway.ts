import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { Http2Session } from 'node:http2';
import type { Server } from 'node:net';
import { type Config, ConfigError } from './config.js';
import { loggerOptions } from './log.js';
import { Metrics, countStoreOperations } from './ops/metrics.js';
import { clientErrorHandler } from './util/client-error.js';
import { ListenerGuard } from './ops/listener-limits.js';
import { keepAccepting } from './ops/descriptors.js';
import { metricsRoute, opsRoutes } from './ops/routes.js';
import { registerOpenApi } from './ops/openapi.js';
import { openStore, type Store } from './store/index.js';
import { ClientRegistry } from './webpush/connection/clients.js';
import { ConnectionServer } from './webpush/connection/server.js';
import { ApiError } from './webpush/protocol/errors.js';
import { endpointRoutes, sendError } from './webpush/endpoint/routes.js';
import type { FastPushHandler } from './webpush/endpoint/fast-path.js';
import { VapidVerifier } from './webpush/endpoint/vapid.js';
import { WebPushRouter } from './webpush/endpoint/router.js';
import { PeerClient } from './webpush/endpoint/peer-client.js';
import { createPeerServer } from './webpush/connection/peer-server.js';
import { workerPeerId } from './webpush/protocol/peer-link.js';
import { BridgeConfigError, Bridges, loadBridges } from './bridge/index.js';
import { DEFAULT_RETRY } from './bridge/reliable.js';
import { registrationRoutes } from './webpush/endpoint/registration.js';
import { closeMongoosePushServer, createMongoosePushServer } from './mongoosepush/server.js';
import { Broadcasts } from './webpush/broadcast/megaphone.js';
import { broadcastRoutes } from './webpush/broadcast/routes.js';
import type { BroadcastVersions } from './webpush/broadcast/source.js';
import { PushComponent } from './xmpp/component.js';
import type { HandlerContext } from './xmpp/handler.js';
import { EndpointGuard } from './xmpp/endpoint-guard.js';
import { NodeRateLimiter } from './xmpp/rate-limit.js';
import { WebPushSender } from './xmpp/webpush-sender.js';
import type { WorkerLink } from './cluster/worker.js';
import type { LinkHandoff } from './cluster/handoff.js';
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
  /** The MongoosePush API's own listener; null unless PUSHGATE_MONGOOSEPUSH_PORT is set. */
  readonly mongoosepush: FastifyInstance | null;
  /** Megaphone broadcast versions the websocket door serves (from a Megaphone service, the store, or none). */
  readonly broadcasts: BroadcastVersions;
  /** The private /metrics listener; null unless PUSHGATE_METRICS_PORT is set. */
  readonly metricsServer: FastifyInstance | null;
  /** Timeouts and the connection cap of the public listener. */
  readonly guard: ListenerGuard;
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
  /** This process is worker `index` of `count` under a cluster primary (PUSHGATE_WORKERS > 1). */
  cluster?: { link: WorkerLink; index: number; count: number; /** Peer links handed between the workers (a connection node's). */ handoff?: LinkHandoff };
  /** Where the JSON log lines go instead of stdout (tests read them). */
  logStream?: { write(line: string): unknown };
  /** False: every push goes through fastify's route, none through its fast path (tests compare the two). */
  fastPath?: boolean;
}

/**
 * Builds a gateway from its configuration: store, routes, websocket server, internal listener, metrics.
 * Nothing is global. PUSHGATE_ROLE decides which doors this node opens.
 */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const pending = config.keptKeys.filter((k) => k.state === 'pending');
  if (pending.length > 0) {
    throw new ConfigError(
      `generated keys are not written yet (${pending.map((k) => k.name).join(', ')}): call ensureGeneratedKeys(config) before createGateway`,
    );
  }
  const metrics = new Metrics();
  // Bridges first: bad credentials stop the start before anything listens.
  const bridges = config.bridges
    ? loadBridges(
        config.bridges,
        metrics,
        { ...DEFAULT_RETRY, maxQueued: config.bridgeQueue, queueFullRetryAfter: config.bridgeTimeout },
        { timeoutMs: config.bridgeTimeout * 1000 },
      )
    : Bridges.empty();
  const store = countStoreOperations(options.store ?? (await openStore(config.store, { sqliteSynchronous: config.sqliteSynchronous })), metrics);
  const cluster = options.cluster ?? null;
  const clients = cluster ? cluster.link.clients : new ClientRegistry();
  // A push another process offers to a client held here is saved here (the holder saves: README "Durability").
  clients.store = store;
  cluster?.link.shareMetrics(metrics.registry);
  // Per-machine singletons (the XMPP components: one link per server, not per worker; the expiry sweep) run in worker 1.
  const leader = !cluster || cluster.index === 1;
  const tls = config.tlsCert && config.tlsKey ? { key: readFileSync(config.tlsKey), cert: readFileSync(config.tlsCert) } : null;
  const logger = (
    options.logger === false ? false : { ...(loggerOptions(config.logLevel) as object), ...(options.logStream ? { stream: options.logStream } : {}) }
  ) as ReturnType<typeof loggerOptions>;
  // With TLS the listener speaks HTTP/2 to application servers and HTTP/1.1 (for websockets) to browsers.
  // Request lines are not logged: their URLs carry endpoint tokens and message ids.
  const common = {
    logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Endpoint tokens and message ids are long Fernet tokens.
    routerOptions: { maxParamLength: 1024 },
    // Unknown fields are refused, not silently dropped.
    ajv: { customOptions: { allowUnionTypes: true, removeAdditional: false } },
    // Requests Node's parser refuses (headers over the limit, a malformed request line): see util/client-error.ts.
    clientErrorHandler,
    // URLs the router refuses before any route sees them (a path parameter over maxParamLength, a malformed
    // escape) get the error body of the door they were meant for, not fastify's own (found by schemathesis).
    frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (err.code !== 'FST_ERR_MAX_PARAM_LENGTH' && err.code !== 'FST_ERR_BAD_URL') return sendError(reply, new ApiError('unknown', 'Internal error'));
      if (request.url.startsWith('/v3/')) return reply.code(400).send({ reason: 'invalid_request' });
      return sendError(reply, new ApiError('invalidUrl', 'Invalid URL'));
    },
  };
  /** The push route's fast path (webpush/endpoint/fast-path.ts), once the endpoint routes are registered. */
  let fastPush: FastPushHandler | null = null;
  let closing = false;
  const app = (tls
    ? Fastify({ ...common, http2: true, https: { allowHTTP1: true, ...tls } } as Parameters<typeof Fastify>[0])
    : Fastify({
        ...common,
        forceCloseConnections: 'idle',
        // The plain listener (what a TLS-terminating proxy talks to) lets the push route's fast path look at each
        // request first; anything it does not take goes to fastify unread. As fastify's own factory, plus the limits below.
        serverFactory: (handler) =>
          createHttpServer((req, res) => {
            if (fastPush === null || !fastPush(req, res)) handler(req, res);
          }),
      })) as unknown as FastifyInstance;
  // Issue 9 §8: bounded time to send a request and a bounded number of connections (see ListenerGuard).
  const server = app.server as unknown as Server & { keepAliveTimeout?: number; headersTimeout?: number; requestTimeout?: number };
  server.keepAliveTimeout = config.keepAliveTimeout * 1000;
  // Node's own checks as a second line on plain HTTP/1.1 (headersTimeout must not exceed requestTimeout).
  server.requestTimeout = config.requestTimeout * 1000;
  server.headersTimeout = Math.min(config.headersTimeout, config.requestTimeout) * 1000;
  const guard = new ListenerGuard(
    server,
    {
      headersMs: config.headersTimeout * 1000,
      keepAliveMs: config.keepAliveTimeout * 1000,
      requestMs: config.requestTimeout * 1000,
      maxConnections: config.maxConnections,
    },
    metrics.httpConnectionsClosed,
  );
  // HTTP/2 sessions, so that shutdown can ask them to finish (GOAWAY) and cut them after the grace.
  const h2sessions = new Set<Http2Session>();
  if (tls) {
    server.on('session', (session: Http2Session) => {
      h2sessions.add(session);
      // An idle HTTP/2 session lives as long as an idle HTTP/1.1 keep-alive connection.
      session.setTimeout(config.keepAliveTimeout * 1000, () => session.close());
      session.once('close', () => h2sessions.delete(session));
    });
  }

  const serveConnections = config.role !== 'endpoint';
  const serveEndpoints = config.role !== 'connection';
  // Routes to other nodes only where routes can be recorded: a fleet shares one store.
  const peers =
    config.role !== 'all' || config.routerPort !== null
      ? new PeerClient(config.routerSecret, undefined, config.routerCa ? readFileSync(config.routerCa) : null, { metrics, log: app.log })
      : null;
  const peerTls = config.routerTlsCert && config.routerTlsKey ? { key: readFileSync(config.routerTlsKey), cert: readFileSync(config.routerTlsCert) } : null;
  // With several workers and a plain internal port each worker is a peer of its own (peer-link.ts workerPeerId): an
  // endpoint node's link for it is handed to it (cluster/handoff.ts), so a push arrives where its client is. A TLS
  // session cannot move between processes: with TLS the node is one peer, and a push crosses the mesh when needed.
  const handoff = cluster?.handoff && serveConnections && config.routerPort !== null && !peerTls ? cluster.handoff : null;
  const peerId = !serveConnections || config.peerUrl === null ? null : handoff ? workerPeerId(config.peerUrl, cluster!.index) : config.peerUrl;
  const broadcastFeed = new Broadcasts({
    store,
    metrics,
    log: app.log,
    megaphoneUrl: config.megaphoneUrl,
    megaphoneToken: config.megaphoneToken,
    pollIntervalSeconds: config.megaphonePollInterval,
  });
  const userMaxIdleMs = config.userMaxIdleDays * 86_400_000;
  const router = new WebPushRouter(store, clients, config.fernet, metrics, config.msgLimit, peerId, peers, bridges, cluster?.link ?? null, {
    userMaxIdleMs,
    storageBatch: config.storageBatch,
    now: () => Date.now(),
  });
  if (cluster) router.useSeqLane(cluster.index - 1, cluster.count);
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
          maxUnacked: config.maxUnacked,
          wsHighWater: config.wsHighWater,
          ackWaitMs: config.ackWaitMs,
          maxChannels: config.maxChannels,
          userMaxIdleMs,
          // Megaphone: the poller / API (another part of src/webpush/broadcast) will supply the real source.
          broadcasts: broadcastFeed.source,
          nextSeq: () => router.nextSeq(),
          now: () => Date.now(),
          dashboard,
        },
        { maxFrameBytes: config.maxFrameBytes, wsPingIntervalMs: config.wsPingInterval * 1000 },
      )
    : null;
  // loadConfig refuses PUSHGATE_ROUTER_PORT without PUSHGATE_ROUTER_SECRET; the check here keeps it so for embedders.
  if (serveConnections && config.routerPort !== null && config.routerSecret === null)
    throw new ConfigError('PUSHGATE_ROUTER_SECRET is required with PUSHGATE_ROUTER_PORT');
  const peerServer =
    serveConnections && config.routerPort !== null
      ? createPeerServer({ clients, secret: config.routerSecret!, log: app.log, metrics, tls: peerTls, siblings: cluster?.link ?? null, handoff })
      : null;
  // Issue 9 §17: /metrics on a private listener when asked; the public port then no longer serves it.
  const metricsServer =
    config.metricsPort !== null
      ? (Fastify({
          loggerInstance: app.log,
          logController: new LogController({ disableRequestLogging: true }),
          forceCloseConnections: true,
        }) as unknown as FastifyInstance)
      : null;
  metricsServer?.register(metricsRoute, { metrics, clusterMetrics: cluster ? () => cluster.link.metrics() : null });

  // Every XMPP server's component shares one context; only the component JID differs.
  const webpushGuard = new EndpointGuard(new URL(config.publicUrl).origin, config.xmppWebpushAllow);
  const xmppServers = leader ? config.xmppServers : [];
  const xmppShared: Omit<HandlerContext, 'jid'> | null =
    xmppServers.length === 0
      ? null
      : {
          store,
          bridges,
          metrics,
          limiter: new NodeRateLimiter(config.xmppRateLimit, config.xmppRateBurst),
          rateLimitReply: config.xmppRateLimitReply,
          webpush: new WebPushSender(
            config.publicUrl,
            config.fernet,
            serveEndpoints ? router : null,
            {
              publicKey: config.vapidPublicKey,
              privateKey: config.vapidPrivateKey,
              subject: config.vapidSubject,
            },
            webpushGuard,
          ),
          guard: webpushGuard,
          // Secrets are sealed with the crypto key (CRYPTO_KEY rotation keeps them: every listed key opens).
          sealer: {
            seal: (secret) => config.fernet.encryptToString(Buffer.from(secret)),
            open: (sealed) => config.fernet.decryptString(sealed)?.toString() ?? null,
          },
          maxRegistrations: config.xmppMaxRegistrations,
          defaultApps: new Map(
            config.xmppDefaultApps
              .split(',')
              .map((e) => e.trim())
              .filter(Boolean)
              .map((e) => e.split(':') as [string, string]),
          ),
          publishOptionsDomains: new Set(
            config.xmppPublishOptionsDomains
              .split(',')
              .map((d) => d.trim().toLowerCase())
              .filter(Boolean),
          ),
          maxStanzaBytes: config.xmppMaxStanza,
          log: app.log,
        };
  // A default app that is not configured would send every registration naming none into a bad-request: refuse to start.
  for (const [type, appId] of xmppShared?.defaultApps ?? []) {
    if (!bridges.get(type, appId)) throw new BridgeConfigError(`PUSHGATE_XMPP_DEFAULT_APPS names ${type}:${appId}, which the bridges file does not configure`);
  }
  const xmpp = xmppServers.map((s) => new PushComponent(s, { ...xmppShared!, jid: s.domain }));

  // Callback style: an async hook would cost a promise on every answer (issue 13, the direct push's CPU).
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    done();
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new ApiError('invalidUrl', 'Not found')));
  // Before the routes: the OpenAPI generator collects them as they are added.
  await registerOpenApi(app, config.publicUrl);
  app.register(opsRoutes, {
    store,
    metrics,
    connections: () => connections?.size ?? 0,
    clusterMetrics: cluster ? () => cluster.link.metrics() : null,
    worker: cluster?.index ?? null,
    serveMetrics: metricsServer === null,
  });
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
    app.register(endpointRoutes, {
      fernet: config.fernet,
      router,
      vapid,
      store,
      clients,
      metrics,
      publicUrl: config.publicUrl,
      maxDataBytes: config.maxDataBytes,
      dashboard,
      ...(options.fastPath !== false ? { fastPath: (handler: FastPushHandler) => (fastPush = handler), closing: () => closing } : {}),
    });
    app.register(registrationRoutes, {
      store,
      bridges,
      fernet: config.fernet,
      authKeys: config.authKeyList,
      publicUrl: config.publicUrl,
      maxChannels: config.bridgeMaxChannels,
      metrics,
    });
  }
  // Never on the public port: it sends visible notifications through the operator's apps.
  const mongoosepush = serveEndpoints && config.mongoosepushPort !== null ? createMongoosePushServer({ config, bridges, metrics, logger }) : null;
  // Pushgate's own Megaphone API: only where no Megaphone service is named and a token is set.
  if (broadcastFeed.mode === 'store') app.register(broadcastRoutes, { broadcasts: broadcastFeed, token: config.megaphoneToken!, metrics });
  app.server.on('upgrade', (req, socket, head) => {
    if (connections) connections.handleUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  const sweeper = setInterval(() => {
    if (!leader) return;
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
    mongoosepush,
    broadcasts: broadcastFeed.source,
    metricsServer,
    guard,
    dashboard,
    async listen() {
      await broadcastFeed.start();
      if (peerServer) await peerServer.listen({ port: config.routerPort!, host: config.routerHost });
      if (mongoosepush) await mongoosepush.listen({ port: config.mongoosepushPort!, host: config.mongoosepushHost });
      if (metricsServer) await metricsServer.listen({ port: config.metricsPort!, host: config.metricsHost });
      await app.listen({ port: config.port, host: config.host });
      // Only now: an error before this (EADDRINUSE) must still fail the start.
      const listening = { public: app, router: peerServer, mongoosepush, metrics: metricsServer };
      for (const [name, server] of Object.entries(listening)) {
        if (server) keepAccepting(server.server, name, app.log, () => metrics.acceptErrors.inc({ listener: name }));
      }
      // The XMPP links come up (and back) by themselves; the gateway does not wait for them.
      for (const c of xmpp) c.start();
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      return `${tls ? 'https' : 'http'}://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
    },
    close() {
      closed ??= (async () => {
        clearInterval(sweeper);
        broadcastFeed.stop();
        // Clients first: they are told to reconnect and their unacked messages are stored;
        // then the listener stops and in-flight requests finish; the store closes last.
        await Promise.all(xmpp.map((c) => c.stop()));
        await connections?.close();
        await peerServer?.close();
        if (mongoosepush) await closeMongoosePushServer(mongoosepush, config.shutdownGrace * 1000);
        await metricsServer?.close();
        // In-flight requests get PUSHGATE_SHUTDOWN_GRACE seconds; then remaining connections are cut. Idle
        // connections go at once, and HTTP/2 sessions are told GOAWAY so they finish their streams and open
        // no new ones (fastify and node < 24 leave HTTP/2 sessions open, which held the close forever).
        const grace = setTimeout(() => {
          for (const s of h2sessions) s.destroy();
          guard.destroyAll();
        }, config.shutdownGrace * 1000);
        grace.unref();
        closing = true;
        const stopped = app.close();
        guard.closeIdle();
        for (const s of h2sessions) s.close();
        await stopped;
        clearTimeout(grace);
        peers?.close();
        await bridges.close();
        await dashboard.close();
        await store.close();
      })();
      return closed;
    },
  };
}
