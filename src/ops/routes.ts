import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import type { Metrics } from './metrics.js';
import { TAGS } from './openapi.js';
import { versionInfo } from './version.js';

export interface OpsOptions {
  store: Store;
  metrics: Metrics;
  connections: () => number;
  /** Every worker's metrics in Prometheus text (PUSHGATE_WORKERS > 1); this process's registry otherwise. */
  clusterMetrics?: (() => Promise<string>) | null;
  /** This worker's index under PUSHGATE_WORKERS > 1 (reported by /health), or null for a single process. */
  worker?: number | null;
  /** False when /metrics has its own listener (PUSHGATE_METRICS_PORT): the public port must not expose it. */
  serveMetrics: boolean;
}

const statusSchema = { type: 'object', additionalProperties: true } as const;

/** Operations endpoints (Mozilla Dockerflow conventions, as autopush serves them) and Prometheus /metrics. */
export async function opsRoutes(app: FastifyInstance, opts: OpsOptions): Promise<void> {
  const { store, metrics } = opts;

  app.get(
    '/health',
    { schema: { summary: 'Liveness, version and open websocket connections', tags: [TAGS.ops], response: { 200: statusSchema } } },
    async () => ({
      status: 'OK',
      version: versionInfo().version,
      connections: opts.connections(),
      ...(opts.worker ? { worker: opts.worker } : {}),
    }),
  );

  app.get(
    '/__lbheartbeat__',
    { schema: { summary: 'Load balancer liveness (Dockerflow)', tags: [TAGS.ops], response: { 200: statusSchema } } },
    async () => ({}),
  );

  app.get('/__version__', { schema: { summary: 'Version, commit and source (Dockerflow)', tags: [TAGS.ops], response: { 200: statusSchema } } }, async () =>
    versionInfo(),
  );

  app.get(
    '/__heartbeat__',
    { schema: { summary: 'Readiness: the store answers (Dockerflow)', tags: [TAGS.ops], response: { 200: statusSchema, 503: statusSchema } } },
    async (_req, reply) => {
      try {
        await store.health();
        return { status: 'OK', version: versionInfo().version, database: 'OK' };
      } catch {
        reply.code(503);
        return { status: 'ERROR', version: versionInfo().version, database: 'ERROR' };
      }
    },
  );

  if (opts.serveMetrics) await metricsRoute(app, { metrics, clusterMetrics: opts.clusterMetrics ?? null });
}

export interface MetricsRouteOptions {
  metrics: Metrics;
  /** Every worker's metrics in Prometheus text (PUSHGATE_WORKERS > 1); this process's registry otherwise. */
  clusterMetrics: (() => Promise<string>) | null;
}

/** Prometheus `GET /metrics`, on the public listener or on the private PUSHGATE_METRICS_PORT. */
export async function metricsRoute(app: FastifyInstance, opts: MetricsRouteOptions): Promise<void> {
  const metricsSchema = { summary: 'Prometheus metrics', tags: [TAGS.ops], produces: ['text/plain'], response: { 200: { type: 'string' } } };
  app.get('/metrics', { schema: metricsSchema }, async (_req, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.clusterMetrics ? opts.clusterMetrics() : opts.metrics.registry.metrics();
  });
}
