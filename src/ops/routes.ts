import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import type { Metrics } from './metrics.js';
import { versionInfo } from './version.js';

export interface OpsOptions {
  store: Store;
  metrics: Metrics;
  connections: () => number;
  /** False when /metrics has its own listener (PUSHGATE_METRICS_PORT): the public port must not expose it. */
  serveMetrics: boolean;
}

const statusSchema = { type: 'object', additionalProperties: true } as const;

/** Operations endpoints (Mozilla Dockerflow conventions, as autopush serves them) and Prometheus /metrics. */
export async function opsRoutes(app: FastifyInstance, opts: OpsOptions): Promise<void> {
  const { store, metrics } = opts;

  app.get('/health', { schema: { response: { 200: statusSchema } } }, async () => ({
    status: 'OK',
    version: versionInfo().version,
    connections: opts.connections(),
  }));

  app.get('/__lbheartbeat__', { schema: { response: { 200: statusSchema } } }, async () => ({}));

  app.get('/__version__', { schema: { response: { 200: statusSchema } } }, async () => versionInfo());

  app.get('/__heartbeat__', { schema: { response: { 200: statusSchema, 503: statusSchema } } }, async (_req, reply) => {
    try {
      await store.health();
      return { status: 'OK', version: versionInfo().version, database: 'OK' };
    } catch {
      reply.code(503);
      return { status: 'ERROR', version: versionInfo().version, database: 'ERROR' };
    }
  });

  if (opts.serveMetrics) await metricsRoute(app, { metrics });
}

/** Prometheus `GET /metrics`, on the public listener or on the private PUSHGATE_METRICS_PORT. */
export async function metricsRoute(app: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
}
