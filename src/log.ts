import type { FastifyServerOptions } from 'fastify';

/**
 * Logging options: JSON lines (pino, through fastify). Request lines carry the route pattern, never the URL,
 * because push URLs hold endpoint tokens and message ids; headers and bodies are never logged.
 */
export function loggerOptions(level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    base: { service: 'pushgate' },
    redact: { paths: ['req.headers', 'headers', 'authorization', 'token', 'data', 'body', 'cryptoKey'], censor: '[redacted]' },
    serializers: {
      req(request: { method: string; routeOptions?: { url?: string } }) {
        return { method: request.method, route: request.routeOptions?.url ?? 'unmatched' };
      },
      res(reply: { statusCode: number }) {
        return { statusCode: reply.statusCode };
      },
    },
  };
}
