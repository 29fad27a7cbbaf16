/**
 * CORS as autopush-rs sends it (autoendpoint server.rs: actix-cors with `allow_any_origin`,
 * `allow_any_header`, methods DELETE GET POST PUT, max age 3600), so an application server running in a web
 * page can push and read the answer. actix-cors echoes the request's Origin rather than sending `*`
 * (Fetch standard §3.2.5: a browser accepts either) and answers a preflight itself with 200.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const CORS_METHODS = ['DELETE', 'GET', 'POST', 'PUT'] as const;
const MAX_AGE_SECONDS = 3600;
/** A preflight's header list is echoed back; a bound keeps a hostile one from filling the answer. */
const MAX_REQUEST_HEADERS_BYTES = 4096;

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The response headers of an actual cross-origin request (one that carries Origin); null without Origin. */
export function corsHeaders(origin: string | undefined): Record<string, string> | null {
  if (origin === undefined) return null;
  return { 'access-control-allow-origin': origin, vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' };
}

/** Adds them to a route's answer. */
export function addCorsHeaders(request: FastifyRequest, reply: FastifyReply): void {
  const headers = corsHeaders(one(request.headers.origin));
  if (headers) reply.headers(headers);
}

/**
 * Registers the CORS hook on this plugin's routes and, when `preflight` is set, the OPTIONS answer for every
 * path (register it once). A preflight for a method outside the list is 400, as actix-cors answers it.
 */
export function cors(app: FastifyInstance, { preflight }: { preflight: boolean }): void {
  // Callback style: an async hook would cost a promise on every answer, most of which carry no Origin.
  app.addHook('onSend', (request, reply, payload, done) => {
    addCorsHeaders(request, reply);
    done(null, payload);
  });
  if (!preflight) return;
  // Hidden from the OpenAPI document: the browser's preflight on any path, not an operation of the API.
  app.options('/*', { schema: { hide: true } }, async (request, reply) => {
    const origin = one(request.headers.origin);
    const method = one(request.headers['access-control-request-method']);
    if (origin === undefined || method === undefined) return reply.code(404).send();
    if (!(CORS_METHODS as readonly string[]).includes(method.trim().toUpperCase()))
      return reply.code(400).type('text/plain').send('Request method is not allowed');
    const requested = one(request.headers['access-control-request-headers']);
    if (requested !== undefined && requested.length <= MAX_REQUEST_HEADERS_BYTES) reply.header('access-control-allow-headers', requested);
    reply.header('access-control-allow-methods', CORS_METHODS.join(', ')).header('access-control-max-age', String(MAX_AGE_SECONDS));
    return reply.code(200).send();
  });
}
