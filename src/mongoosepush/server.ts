/**
 * The MongoosePush API's own listener (PUSHGATE_MONGOOSEPUSH_PORT on PUSHGATE_MONGOOSEPUSH_HOST): the API
 * sends visible notifications through the operator's FCM and APNs apps, so it is an internal service as in
 * every MongooseIM deployment, never on the public port. Optionally TLS (HTTP/2 and HTTP/1.1), and HTTP basic
 * auth (RFC 7617) for a listener beyond loopback; the credentials are compared in constant time and a refusal
 * is logged (without the secret) and counted under door "mongoosepush".
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ListenerGuard } from '../ops/listener-limits.js';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Bridges } from '../bridge/index.js';
import type { Config } from '../config.js';
import { authFailed, type Metrics } from '../ops/metrics.js';
import { mongoosePushRoutes } from './routes.js';
import { mongoosePushOpenApi } from '../ops/openapi.js';

/** MongooseIM's pushes are small (FCM and APNs take 4 KB); a body beyond this is refused (413). */
const BODY_LIMIT = 64 * 1024;

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries the configured basic credentials (RFC 7617 §2), in constant time. */
export function basicAuthOk(header: string | undefined, user: string, password: string): 'ok' | 'missing' | 'malformed' | 'wrong' {
  if (!header) return 'missing';
  const m = /^basic\s+([A-Za-z0-9+/=]{1,1024})$/i.exec(header.trim());
  if (!m) return 'malformed';
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  const given = digest(Buffer.from(m[1]!, 'base64'));
  const expected = digest(Buffer.from(`${user}:${password}`, 'utf8'));
  return timingSafeEqual(given, expected) ? 'ok' : 'wrong';
}

export interface MongoosePushServerOptions {
  config: Pick<
    Config,
    | 'mongoosepushTlsCert'
    | 'mongoosepushTlsKey'
    | 'mongoosepushUser'
    | 'mongoosepushPassword'
    | 'headersTimeout'
    | 'keepAliveTimeout'
    | 'requestTimeout'
    | 'maxConnections'
  >;
  bridges: Bridges;
  metrics: Metrics;
  logger: unknown;
}

export function createMongoosePushServer(opts: MongoosePushServerOptions): FastifyInstance {
  const { config, bridges, metrics } = opts;
  const tls =
    config.mongoosepushTlsCert && config.mongoosepushTlsKey
      ? { key: readFileSync(config.mongoosepushTlsKey), cert: readFileSync(config.mongoosepushTlsCert) }
      : null;
  const common = {
    logger: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Device tokens: FCM's are ~160 characters, longer ones are allowed by the bridges up to 4096.
    routerOptions: { maxParamLength: 4096 },
    forceCloseConnections: 'idle' as const,
    requestTimeout: 30_000,
  };
  // With TLS, HTTP/2 as MongoosePush serves it (ALPN), HTTP/1.1 for clients that offer only that.
  const app = (tls
    ? Fastify({ ...common, forceCloseConnections: undefined, http2: true, https: { allowHTTP1: true, ...tls } } as Parameters<typeof Fastify>[0])
    : Fastify(common as Parameters<typeof Fastify>[0])) as unknown as FastifyInstance;
  // Issue 9 §8: the same request timeouts and connection cap as the public listener (the guard lives as long as it).
  new ListenerGuard(app.server, {
    headersMs: config.headersTimeout * 1000,
    keepAliveMs: config.keepAliveTimeout * 1000,
    requestMs: config.requestTimeout * 1000,
    maxConnections: config.maxConnections,
  });
  const { mongoosepushUser: user, mongoosepushPassword: password } = config;
  if (user !== null && password !== null) {
    app.addHook('onRequest', async (request, reply) => {
      const verdict = basicAuthOk(request.headers.authorization, user, password);
      if (verdict === 'ok') return;
      authFailed(metrics, request.log, 'mongoosepush', verdict, { ip: request.ip });
      return reply.code(401).header('www-authenticate', 'Basic realm="MongoosePush", charset="UTF-8"').type('application/json; charset=utf-8').send('null');
    });
  }
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  // Its own OpenAPI document at /openapi.json on this listener (behind the same basic auth): the public port never advertises it.
  mongoosePushOpenApi(app);
  app.register(mongoosePushRoutes, { bridges });
  // Open connections (HTTP/1.1 keep-alive or HTTP/2 sessions) are tracked so a shutdown can end them after its grace.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  openSockets.set(app, sockets);
  return app;
}

const openSockets = new WeakMap<FastifyInstance, Set<Socket>>();

/** Stops the listener: in-flight requests get graceMs, then the connections still open (idle HTTP/2 sessions too) are cut. */
export async function closeMongoosePushServer(app: FastifyInstance, graceMs: number): Promise<void> {
  const timer = setTimeout(() => {
    for (const socket of openSockets.get(app) ?? []) socket.destroy();
  }, graceMs);
  timer.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
